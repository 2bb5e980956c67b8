/**
 * deploy/: the systemd unit passes `systemd-analyze verify` (and the check
 * does catch a misspelled directive or a bad value), its sandbox keeps
 * `systemd-analyze security` low, its stop timeout covers tallyd's own, and
 * deploy/redis.conf is accepted by the real redis-server with every setting
 * in effect.
 *
 * Skipped only when systemd-analyze is missing and CI is unset; under CI a
 * missing tool fails the run.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { DEFAULTS } from '../../src/config/defaults.js';
import { client } from '../helpers/redis.js';
import { RedisServer } from '../helpers/redis-server.js';
import { ROOT } from '../helpers/tallyd.js';

const SYSTEMD_ANALYZE = process.env.SYSTEMD_ANALYZE_BIN ?? '/usr/bin/systemd-analyze';
const UNIT = path.join(ROOT, 'deploy', 'tallyd.service');
const REDIS_CONF = path.join(ROOT, 'deploy', 'redis.conf');
/** What the shipped unit runs: the npm -g install path and the config under /etc/tallyd/. */
const SHIPPED_EXEC = /^ExecStart=\/usr\/local\/bin\/tallyd \/etc\/tallyd\/tallyd\.conf\.js$/m;
/** How long a cluster primary waits for its workers to stop (src/cluster.ts). */
const CLUSTER_STOP_MS = 15_000;

const inCi = Boolean(process.env.CI);
const missing = !existsSync(SYSTEMD_ANALYZE);
const skip = missing && !inCi ? `${SYSTEMD_ANALYZE} is missing (apt-get install systemd); set CI=1 to make this a failure` : false;

/** Runs a command to its end: exit code, stdout alone, and stdout + stderr as they came. */
function run(cmd: string, args: string[], cwd: string): Promise<{ code: number | null; stdout: string; out: string }> {
  return new Promise((resolve) => {
    const proc = spawn(cmd, args, { cwd, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let out = '';
    proc.stdout.on('data', (d: Buffer) => {
      stdout += d.toString();
      out += d.toString();
    });
    proc.stderr.on('data', (d: Buffer) => (out += d.toString()));
    proc.on('error', (err) => resolve({ code: null, stdout, out: `${out}spawn error: ${err.message}` }));
    proc.on('exit', (code) => resolve({ code, stdout, out }));
  });
}

/**
 * The shipped unit with ExecStart pointing at this checkout's node and
 * dist/main.js: verify checks that the executable exists, and the installed
 * path does not exist here. Nothing else changes.
 */
function runnableUnit(text: string): string {
  assert.match(text, SHIPPED_EXEC, 'deploy/tallyd.service: ExecStart is not the documented install path');
  return text.replace(SHIPPED_EXEC, `ExecStart=${process.execPath} ${path.join(ROOT, 'dist', 'main.js')} /etc/tallyd/tallyd.conf.js`);
}

/**
 * `systemd-analyze verify` on the unit text, saved as tallyd.service in a
 * temp dir. It exits 0 on an unknown directive or an unparsable value (it
 * only warns, "tallyd.service:54: Unknown key ..."), so every line that names
 * our unit counts as a problem too; lines about other units on the machine
 * (loaded as dependencies) do not.
 */
async function verify(text: string): Promise<{ code: number | null; problems: string[]; out: string }> {
  const dir = mkdtempSync(path.join(tmpdir(), 'tallyd-unit-'));
  try {
    writeFileSync(path.join(dir, 'tallyd.service'), text);
    const { code, out } = await run(SYSTEMD_ANALYZE, ['verify', '--man=no', 'tallyd.service'], dir);
    const problems = out.split('\n').filter((l) => l.includes('tallyd.service'));
    return { code, problems, out };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** The value of a [Service] directive (the last one wins, as in systemd). */
function directive(text: string, key: string): string {
  const values = [...text.matchAll(new RegExp(`^${key}=(.*)$`, 'gm'))].map((m) => m[1] ?? '');
  const last = values.at(-1);
  assert.ok(last !== undefined, `deploy/tallyd.service has no ${key}=`);
  return last;
}

describe('deploy/tallyd.service', { skip }, () => {
  const unit = readFileSync(UNIT, 'utf8');

  before(() => {
    if (missing) throw new Error(`CI is set but ${SYSTEMD_ANALYZE} is missing`);
  });

  test('systemd-analyze verify accepts it without a warning', async () => {
    const res = await verify(runnableUnit(unit));
    assert.equal(res.code, 0, res.out);
    assert.deepEqual(res.problems, [], res.out);
  });

  test('the check catches a misspelled directive and a bad value', async () => {
    const text = runnableUnit(unit);
    const misspelled = await verify(text.replace(/^ProtectHome=/m, 'ProtecHome='));
    assert.ok(misspelled.problems.some((l) => l.includes("Unknown key 'ProtecHome'")), misspelled.out);
    const badValue = await verify(text.replace(/^TimeoutStopSec=.*$/m, 'TimeoutStopSec=thirty'));
    assert.ok(badValue.problems.some((l) => l.includes('thirty')), badValue.out);
    const noExec = await verify(unit);
    assert.notEqual(noExec.code, 0, `the installed path should not exist on a test machine:\n${noExec.out}`);
  });

  test('its sandbox keeps systemd-analyze security at 2.5 or below', async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'tallyd-unit-'));
    try {
      writeFileSync(path.join(dir, 'tallyd.service'), runnableUnit(unit));
      const res = await run(SYSTEMD_ANALYZE, ['security', '--offline=yes', '--no-pager', '--threshold=25', 'tallyd.service'], dir);
      // --threshold is in tenths of the 0..10 exposure scale shown ("1.4 OK").
      assert.equal(res.code, 0, res.out);
      assert.match(res.out, /Overall exposure level for tallyd\.service: \d/, res.out);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test('stop timeout, restart policy and descriptors fit tallyd', () => {
    const stopS = Number(directive(unit, 'TimeoutStopSec').replace(/s$/, ''));
    assert.ok(stopS * 1000 > DEFAULTS.stopTimeout + 3000, `TimeoutStopSec ${stopS} s <= stopTimeout + 3 s for the flush thread`);
    assert.ok(stopS * 1000 > CLUSTER_STOP_MS, `TimeoutStopSec ${stopS} s <= the cluster primary's wait for its workers`);
    assert.equal(directive(unit, 'KillSignal'), 'SIGTERM');
    assert.equal(directive(unit, 'Restart'), 'on-failure');
    assert.ok(Number(directive(unit, 'LimitNOFILE')) > DEFAULTS.maxConnections * 2, 'LimitNOFILE below two TCP servers of maxConnections');
    assert.notEqual(directive(unit, 'User'), 'root');
  });
});

/** `maxmemory 2gb` -> the bytes CONFIG GET answers (Redis's units: kb, mb, gb are powers of 1024). */
function redisValue(v: string): string {
  const m = /^(\d+)(kb|mb|gb)$/i.exec(v);
  if (!m) return v;
  const unit = { kb: 1024, mb: 1024 ** 2, gb: 1024 ** 3 }[(m[2] ?? '').toLowerCase() as 'kb' | 'mb' | 'gb'];
  return String(Number(m[1]) * unit);
}

describe('deploy/redis.conf', () => {
  const settings = readFileSync(REDIS_CONF, 'utf8')
    .split('\n')
    .filter((l) => l.trim() !== '' && !l.trimStart().startsWith('#'))
    .map((l) => {
      const [key = '', ...rest] = l.trim().split(/\s+/);
      return [key, rest.join(' ')] as const;
    });
  let server: RedisServer | null = null;

  before(async () => {
    server = await RedisServer.start({ configFile: REDIS_CONF });
  });
  after(async () => {
    await server?.stop();
  });

  test('holds what the durability section relies on', () => {
    const map = new Map(settings);
    assert.equal(map.get('appendonly'), 'yes');
    assert.equal(map.get('appendfsync'), 'always');
    assert.equal(map.get('maxmemory-policy'), 'noeviction');
  });

  test('the real redis-server runs with every setting of the file', async () => {
    assert.ok(server);
    const r = client(server.url);
    try {
      for (const [key, value] of settings) {
        const got = (await r.config('GET', key)) as string[];
        assert.deepEqual(got, [key, redisValue(value)], `${key}: file says ${value}, Redis runs with ${got[1]}`);
      }
    } finally {
      r.disconnect();
    }
  });

  test('a write survives kill -9 of redis-server', async () => {
    assert.ok(server);
    const r = client(server.url);
    await r.set('tallyd-deploy-test', 'kept');
    r.disconnect();
    await server.kill9();
    await server.restart();
    const again = client(server.url);
    try {
      assert.equal(await again.get('tallyd-deploy-test'), 'kept', server.output());
    } finally {
      again.disconnect();
    }
  });
});

describe('the npm package', () => {
  test('ships the daemon, its config, deploy/ and the native sources; no tests, benches, TypeScript sources or source maps', async () => {
    // --ignore-scripts: list what `npm pack` would take without running `prepare` (the build) again.
    const res = await run('npm', ['pack', '--dry-run', '--json', '--ignore-scripts'], ROOT);
    assert.equal(res.code, 0, res.out);
    const [pack] = JSON.parse(res.stdout) as Array<{ files: Array<{ path: string }> }>;
    assert.ok(pack);
    const files = pack.files.map((f) => f.path);
    const required = ['LICENSE', 'README.md', 'package.json', 'config/tallyd.conf.js', 'deploy/tallyd.service', 'deploy/redis.conf', 'docs/production.md', 'binding.gyp', 'scripts/build-native.mjs', 'src/native/udp_reader.c'];
    if (existsSync(path.join(ROOT, 'dist', 'main.js'))) required.push('dist/main.js', 'dist/http/page/index.html', 'dist/store/scripts/mergeBatch-11.lua');
    for (const f of required) assert.ok(files.includes(f), `${f} is not in the package`);
    const stray = files.filter((f) => /^(test|bench|examples|node_modules|build)\//.test(f) || f.endsWith('.map') || (f.startsWith('src/') && !/^src\/native\/[\w-]+\.[ch]$/.test(f)));
    assert.deepEqual(stray, [], 'files that do not belong in the package');
  });
});
