/**
 * The trial Redis (redis.embedded): tallyd starts a private redis-server of
 * its own (the real Debian binary), aggregates into it, and stops it by pid
 * when it stops, or when it is killed (the watchdog); "auto" applies only to
 * the default url and only when nothing answers there; without redis-server
 * on PATH, or with "never", the error names the fix.
 */
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, describe, test } from 'node:test';
import { DEFAULTS } from '../../src/config/defaults.js';
import { planRedis } from '../../src/store/embedded-redis.js';
import { CarbonListener, freePort, sendUdp } from '../helpers/carbon.js';
import { REDIS_URL, testPrefix } from '../helpers/redis.js';
import { spawnTallyd, testConfig, waitForOutput, type ChildTallyd } from '../helpers/tallyd.js';

const dirs: string[] = [];
function tempDir(name: string): string {
  const dir = mkdtempSync(path.join(tmpdir(), `tallyd-${name}-`));
  dirs.push(dir);
  return dir;
}
after(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

/** Running, and not a zombie waiting for a reaper. */
function running(pid: number): boolean {
  try {
    return !/^\d+ \(.*\) Z/.test(readFileSync(`/proc/${pid}/stat`, 'utf8'));
  } catch {
    return false;
  }
}

async function waitFor(what: string, cond: () => boolean, timeoutMs = 15_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** The JSON log line whose msg contains `text`. */
function logLine(child: ChildTallyd, text: string): Record<string, unknown> {
  const line = child.output().split('\n').find((l) => l.startsWith('{') && l.includes(text));
  assert.ok(line !== undefined, `no log line with "${text}":\n${child.output()}`);
  return JSON.parse(line) as Record<string, unknown>;
}

/** A PATH with node and sh but no redis-server. */
function pathWithoutRedis(): string {
  const bin = tempDir('bin');
  symlinkSync(process.execPath, path.join(bin, 'node'));
  return bin;
}

describe('trial redis (redis.embedded)', () => {
  test('"always": a private redis-server receives the metrics, is named in the log, and stops with tallyd', async () => {
    const carbon = new CarbonListener();
    const carbonPort = await carbon.start();
    const state = tempDir('state');
    const raw = testConfig(testPrefix('trial'), carbonPort, {
      servers: [{ server: 'udp', address: '127.0.0.1', port: 0 }],
      redis: { url: 'redis://127.0.0.1:1', keyPrefix: 'trial:', embedded: 'always' },
      log: { level: 'info' },
    });
    const child = spawnTallyd(raw, { XDG_STATE_HOME: state });
    try {
      await waitForOutput(child, '"msg":"tallyd is up"');
      const started = logLine(child, 'started a private redis-server');
      const dir = path.join(state, 'tallyd', 'trial-redis');
      assert.equal(started.dir, dir);
      assert.ok(String(started.msg).includes(dir), String(started.msg));
      const redisPid = Number(started.redisPid);
      assert.ok(running(redisPid));
      const udpPort = Number(logLine(child, 'listening for statsd on udp').port);
      await sendUdp(udpPort, ['trial.hits:3|c', 'trial.hits:4|c']);
      await waitFor('stats_counts.trial.hits at Carbon', () => carbon.lines.some((l) => l.name === 'stats_counts.trial.hits' && l.value === '7'));

      child.proc.kill('SIGTERM');
      assert.equal(await child.exited, 0, child.output());
      assert.ok(!running(redisPid), `redis-server ${redisPid} still runs`);
      assert.ok(existsSync(path.join(dir, 'appendonlydir')), 'the AOF stays in the named folder');
      assert.match(child.output(), /trial redis-server stopped/);
    } finally {
      child.proc.kill('SIGKILL');
      await carbon.stop();
    }
  });

  test('kill -9 of tallyd: the watchdog stops its redis-server; the next start uses the same folder', async () => {
    const state = tempDir('state');
    const raw = testConfig(testPrefix('trial-kill'), null, { redis: { url: REDIS_URL, keyPrefix: 'trial:', embedded: 'always' }, log: { level: 'info' } });
    const first = spawnTallyd(raw, { XDG_STATE_HOME: state });
    await waitForOutput(first, '"msg":"tallyd is up"');
    const redisPid = Number(logLine(first, 'started a private redis-server').redisPid);
    first.proc.kill('SIGKILL');
    await first.exited;
    await waitFor(`redis-server ${redisPid} to stop`, () => !running(redisPid));

    const second = spawnTallyd(raw, { XDG_STATE_HOME: state });
    try {
      await waitForOutput(second, '"msg":"tallyd is up"');
      assert.equal(logLine(second, 'started a private redis-server').dir, path.join(state, 'tallyd', 'trial-redis'));
      second.proc.kill('SIGTERM');
      assert.equal(await second.exited, 0, second.output());
    } finally {
      second.proc.kill('SIGKILL');
    }
  });

  test('tallyd and its watchdog both killed -9: the next start stops the orphaned redis-server it finds by its pidfile', async () => {
    const state = tempDir('state');
    const raw = testConfig(testPrefix('trial-orphan'), null, { redis: { url: REDIS_URL, keyPrefix: 'trial:', embedded: 'always' }, log: { level: 'info' } });
    const first = spawnTallyd(raw, { XDG_STATE_HOME: state });
    await waitForOutput(first, '"msg":"tallyd is up"');
    const redisPid = Number(logLine(first, 'started a private redis-server').redisPid);
    // The watchdog: the sh whose arguments name the server's pid.
    const watchdog = readdirSync('/proc').filter((p) => /^\d+$/.test(p)).find((p) => {
      try {
        const argv = readFileSync(`/proc/${p}/cmdline`, 'utf8').split('\0');
        return argv[0] === '/bin/sh' && argv[3] === String(redisPid);
      } catch {
        return false;
      }
    });
    assert.ok(watchdog !== undefined, 'no watchdog found');
    process.kill(Number(watchdog), 'SIGKILL');
    first.proc.kill('SIGKILL');
    await first.exited;
    await waitFor(`watchdog ${watchdog} to die`, () => !running(Number(watchdog)));
    assert.ok(running(redisPid), 'the orphan runs on');

    const second = spawnTallyd(raw, { XDG_STATE_HOME: state });
    try {
      await waitForOutput(second, '"msg":"tallyd is up"');
      const found = logLine(second, 'stopping the trial redis-server a tallyd that died left running');
      assert.equal(found.redisPid, redisPid);
      assert.ok(!running(redisPid));
      second.proc.kill('SIGTERM');
      assert.equal(await second.exited, 0, second.output());
    } finally {
      second.proc.kill('SIGKILL');
      if (running(redisPid)) process.kill(redisPid, 'SIGKILL');
    }
  });

  test('"auto" embeds only for the default url, and only when nothing answers there', async () => {
    const nothing = `redis://127.0.0.1:${await freePort()}`;
    const cfg = { ...DEFAULTS.redis, url: nothing, embedded: 'auto' as const };
    const plan = await planRedis(cfg, nothing, { PATH: process.env.PATH ?? '', XDG_STATE_HOME: '/x' });
    assert.equal(plan.kind, 'embed');
    assert.equal(plan.kind === 'embed' ? plan.dir : '', '/x/tallyd/trial-redis');
    assert.deepEqual(await planRedis(cfg, DEFAULTS.redis.url), { kind: 'configured' }, 'not the default url');
    assert.deepEqual(await planRedis({ ...cfg, url: REDIS_URL }, REDIS_URL), { kind: 'configured' }, 'a Redis answers');
    assert.deepEqual(await planRedis({ ...cfg, embedded: 'never' }, nothing), { kind: 'configured' });
    // Something listens but never answers (a paused Redis): not "nothing answers", so no trial Redis beside it.
    const mute = net.createServer(() => undefined);
    await new Promise<void>((resolve) => mute.listen(0, '127.0.0.1', () => resolve()));
    const muteUrl = `redis://127.0.0.1:${(mute.address() as net.AddressInfo).port}`;
    try {
      assert.deepEqual(await planRedis({ ...cfg, url: muteUrl }, muteUrl), { kind: 'configured' }, 'a mute listener');
    } finally {
      mute.close();
    }
    const none = await planRedis(cfg, nothing, { PATH: pathWithoutRedis() });
    assert.equal(none.kind, 'fail');
    assert.match(none.kind === 'fail' ? none.message : '', /no redis-server is on PATH.*apt-get install redis-server/);
  });

  test('no redis-server on PATH: exit 1, the error names the url and the command that fixes it', async () => {
    const raw = testConfig(testPrefix('trial-none'), null, { redis: { url: REDIS_URL, keyPrefix: 'x:', embedded: 'always' } });
    const child = spawnTallyd(raw, { PATH: pathWithoutRedis(), XDG_STATE_HOME: tempDir('state') });
    assert.equal(await child.exited, 1, child.output());
    const plain = child.output().split('\n').filter((l) => l.startsWith('tallyd:'));
    assert.equal(plain.length, 1, child.output());
    assert.match(plain[0]!, /^tallyd: redis unreachable at redis:\/\/127\.0\.0\.1:\d+: redis\.embedded is "always", and no redis-server is on PATH .*sudo apt-get install redis-server/);
  });

  test('"never" and nothing answering: exit 1, the error names the fix', async () => {
    const port = await freePort();
    const raw = testConfig(testPrefix('trial-never'), null, { redis: { url: `redis://127.0.0.1:${port}`, keyPrefix: 'x:', embedded: 'never' } });
    const child = spawnTallyd(raw, { XDG_STATE_HOME: tempDir('state') });
    assert.equal(await child.exited, 1, child.output());
    assert.match(child.output(), new RegExp(`tallyd: redis unreachable at redis://127\\.0\\.0\\.1:${port}: .*ECONNREFUSED.*; start a Redis there \\(Debian/Ubuntu: sudo apt-get install redis-server\\)`));
  });
});
