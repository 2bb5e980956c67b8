/**
 * `tallyd --check` past the config: the resolved config on stdout as before,
 * then on stderr one line per thing the config needs — Redis (PING, version,
 * the layouts under the key prefix), Carbon (a TCP connect to the port the
 * protocol uses), the native addon — and exit 0 when all answer, 1 when one
 * does not. Real Redis, a real listener for Carbon.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, describe, test } from 'node:test';
import { nativeAddon } from '../../src/native/addon.js';
import { Keys, LAYOUT_VERSION } from '../../src/store/keys.js';
import { createLogger } from '../../src/observability/logger.js';
import { Store } from '../../src/store/store.js';
import { CarbonListener, freePort } from '../helpers/carbon.js';
import { cleanup, client, REDIS_URL, testPrefix } from '../helpers/redis.js';
import { ROOT, testConfig, type RawConfig } from '../helpers/tallyd.js';

const dir = mkdtempSync(path.join(tmpdir(), 'tallyd-check-'));
after(() => rmSync(dir, { recursive: true, force: true }));

function check(raw: RawConfig): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const file = path.join(dir, `${Math.random().toString(36).slice(2)}.json`);
  writeFileSync(file, JSON.stringify(raw));
  return new Promise((resolve) => {
    const env = { ...process.env };
    delete env.REDIS_URL;
    delete env.TALLYD_REDIS_URL;
    const proc = spawn(process.execPath, ['--import', 'tsx', path.join(ROOT, 'src', 'main.ts'), '--check', file], { cwd: ROOT, env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    proc.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    proc.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    proc.on('exit', (code) => resolve({ code, stdout, stderr }));
  });
}

/** The check lines (not pino's JSON log lines). */
function findings(stderr: string): string[] {
  return stderr.split('\n').filter((l) => /^(ok {2}|FAIL) /.test(l));
}

/** What this process finds about the addon: the line --check must print. */
const addonLine = typeof nativeAddon() === 'string' ? /^ok {3}native addon: not loaded: .*npm rebuild tallyd/ : /^ok {3}native addon: loaded/;

describe('--check', () => {
  test('all reachable: exit 0, the config on stdout, what answered on stderr (Redis version, layouts under the prefix)', async () => {
    const carbon = new CarbonListener();
    const port = await carbon.start();
    const prefix = testPrefix('check');
    const r = client();
    await r.set(`${prefix}v${LAYOUT_VERSION}:{0}:lease`, 'x');
    await r.set(`${prefix}v1:{0}:old`, 'x');
    try {
      const res = await check(testConfig(prefix, port));
      assert.equal(res.code, 0, res.stderr);
      assert.equal((JSON.parse(res.stdout) as { redis: { keyPrefix: string } }).redis.keyPrefix, prefix);
      const lines = findings(res.stderr);
      assert.equal(lines.length, 3, res.stderr);
      const version = (await r.info('server')).match(/redis_version:(\S+)/)?.[1];
      assert.equal(lines[0], `ok   redis ${REDIS_URL}: reachable, Redis ${version}; key prefix ${JSON.stringify(prefix)} holds tallyd data of this layout (v${LAYOUT_VERSION}); ` +
        'also data of layout v1, which this tallyd does not read; redis.shards 16, recorded for the prefix: none yet');
      assert.equal(lines[1], `ok   carbon 127.0.0.1:${port} (plaintext): reachable`);
      assert.match(lines[2] ?? '', addonLine);
    } finally {
      r.disconnect();
      await cleanup(prefix);
      await carbon.stop();
    }
  });

  test('an empty prefix and no graphiteHost: exit 0, said so', async () => {
    const prefix = testPrefix('check-empty');
    const res = await check(testConfig(prefix, null));
    assert.equal(res.code, 0, res.stderr);
    const lines = findings(res.stderr);
    assert.match(lines[0] ?? '', new RegExp(`holds no tallyd data of layout v${LAYOUT_VERSION} yet; redis.shards 16, recorded for the prefix: none yet$`));
    assert.equal(lines[1], 'ok   carbon: not configured (no graphiteHost): aggregates are not sent to Carbon');
  });

  test('Carbon not answering (pickle port): exit 1, the line names host, port and why', async () => {
    const pickle = await freePort();
    const res = await check(testConfig(testPrefix('check-carbon'), 2003, { graphiteProtocol: 'pickle', graphitePicklePort: pickle }));
    assert.equal(res.code, 1, res.stderr);
    assert.match(findings(res.stderr)[1] ?? '', new RegExp(`^FAIL carbon 127\\.0\\.0\\.1:${pickle} \\(pickle\\): unreachable: .*ECONNREFUSED`));
  });

  test('Redis not answering (not the default url, so no trial Redis): exit 1', async () => {
    const port = await freePort();
    const res = await check(testConfig(testPrefix('check-redis'), null, { redis: { url: `redis://127.0.0.1:${port}` } }));
    assert.equal(res.code, 1, res.stderr);
    assert.match(findings(res.stderr)[0] ?? '', new RegExp(`^FAIL redis redis://127\\.0\\.0\\.1:${port}: unreachable: .*ECONNREFUSED`));
  });

  test('a bad config is still exit 2, before any check', async () => {
    const res = await check({ flushInterval: -1 });
    assert.equal(res.code, 2);
    assert.deepEqual(findings(res.stderr), []);
    assert.match(res.stderr, /^tallyd: bad config\n.*flushInterval/);
  });

  test('the recorded number of shards beside redis.shards: ok when they match, exit 1 with the ESHARDS message when not', async () => {
    const prefix = testPrefix('check-shards');
    // A state created with 4 shards (the first start records it).
    const store = await Store.open({ url: REDIS_URL, keyPrefix: prefix, shards: 4 }, createLogger('silent'));
    await store.quit();
    try {
      const same = await check(testConfig(prefix, null, { redis: { url: REDIS_URL, keyPrefix: prefix, shards: 4 } }));
      assert.equal(same.code, 0, same.stderr);
      assert.match(findings(same.stderr)[0] ?? '', /^ok {3}redis .*; redis\.shards 4, recorded for the prefix: 4$/);
      const other = await check(testConfig(prefix, null, { redis: { url: REDIS_URL, keyPrefix: prefix, shards: 16 } }));
      assert.equal(other.code, 1, other.stderr);
      const line = findings(other.stderr)[0] ?? '';
      assert.ok(line.startsWith('FAIL redis '), line);
      assert.ok(line.endsWith(`; redis.shards 16, recorded for the prefix: 4: ESHARDS redis.shards is 16, but the state under redis.keyPrefix "${prefix}" `
        + `was created with 4 shard(s) (${Keys.shardsRecord(prefix)}): set redis.shards: 4, or use another keyPrefix for a new state `
        + '(names hash to shards by their number, so it cannot change under a running state)'), line);
    } finally {
      await cleanup(prefix);
    }
  });

  test('a state from before shards (keys under {0}, no record) counts as one shard', async () => {
    const prefix = testPrefix('check-legacy');
    const r = client();
    await r.set(new Keys(prefix, '0').lastCommit, '1800000000000');
    r.disconnect();
    try {
      const one = await check(testConfig(prefix, null, { redis: { url: REDIS_URL, keyPrefix: prefix, shards: 1 } }));
      assert.equal(one.code, 0, one.stderr);
      assert.match(findings(one.stderr)[0] ?? '', /; redis\.shards 1, recorded for the prefix: 1 \(a state from before shards, not recorded yet\)$/);
      const many = await check(testConfig(prefix, null));
      assert.equal(many.code, 1, many.stderr);
      assert.match(findings(many.stderr)[0] ?? '', /^FAIL .*: ESHARDS redis\.shards is 16, but the state .* was created with 1 shard\(s\)/);
    } finally {
      await cleanup(prefix);
    }
  });
});
