/**
 * The command line as a user meets it: --help and --version, a bad config
 * (exit 2, every problem named), a port in use and an unreachable Redis
 * (exit 1, one line naming what and where), a SIGTERM while starting (exit 0
 * once started and stopped), a second SIGINT during a long stop (exit 1 at
 * once; the same SIGINT again at once is no second one).
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import dgram from 'node:dgram';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, test } from 'node:test';
import { freePort } from '../helpers/carbon.js';
import { cleanup, REDIS_URL, testPrefix } from '../helpers/redis.js';
import { ROOT, spawnTallyd, testConfig, waitForOutput } from '../helpers/tallyd.js';
import { LAYOUT_VERSION } from '../../src/store/keys.js';

function run(args: string[], env: NodeJS.ProcessEnv = {}): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const proc = spawn(process.execPath, ['--import', 'tsx', path.join(ROOT, 'src', 'main.ts'), ...args], {
      cwd: ROOT,
      env: { ...process.env, ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    proc.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    proc.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const kill = setTimeout(() => proc.kill('SIGKILL'), 20_000);
    proc.on('exit', (code) => {
      clearTimeout(kill);
      resolve({ code, stdout, stderr });
    });
  });
}

function writeConfig(name: string, text: string): string {
  const file = path.join(mkdtempSync(path.join(tmpdir(), 'tallyd-cli-')), name);
  writeFileSync(file, text);
  return file;
}

/** stderr without pino's JSON log lines: what a person reads. */
function plain(stderr: string): string[] {
  return stderr.split('\n').filter((l) => l !== '' && !l.startsWith('{'));
}

describe('command line', () => {
  test('--help and --version', async () => {
    const help = await run(['--help']);
    assert.equal(help.code, 0);
    assert.match(help.stdout, /^Usage: tallyd \[options\] \[config-file\]/);
    assert.match(help.stdout, /REDIS_URL/);
    const version = await run(['--version']);
    assert.equal(version.code, 0);
    assert.match(version.stdout, /^tallyd \d+\.\d+\.\d+\n$/);
  });

  test('a bad config file: exit 2, every problem with the file and the key', async () => {
    const file = writeConfig('bad.js', '{ strictConfig: true, flushInteval: 1000, percentThreshold: "ninety", mgmt_port: 70000 }');
    const r = await run([file]);
    assert.equal(r.code, 2);
    assert.deepEqual(plain(r.stderr), [
      'tallyd: bad config',
      `${file}: flushInteval: unknown key (did you mean flushInterval?)`,
      `${file}: percentThreshold: must be a number or an array of numbers, each non-zero and between -100 and 100, got "ninety"`,
      `${file}: mgmt_port: must be an integer port number 0..65535, got 70000`,
    ]);
  });

  test('a port in use: exit 1 with one line naming it', async () => {
    const busy = dgram.createSocket('udp4');
    await new Promise<void>((r) => busy.bind(0, '127.0.0.1', () => r()));
    const port = busy.address().port;
    const prefix = testPrefix('cli-busy');
    const raw = testConfig(prefix, null, { servers: [{ server: 'udp', address: '127.0.0.1', port }] });
    const r = await run([writeConfig('busy.json', JSON.stringify(raw))]);
    busy.close();
    await cleanup(prefix); // the flush thread started (and closed a period) before the port failed
    assert.equal(r.code, 1);
    assert.deepEqual(plain(r.stderr), [`tallyd: cannot listen on udp 127.0.0.1:${port}: address already in use (EADDRINUSE)`]);
  });

  test('redis unreachable: exit 1 with one line naming the url', async () => {
    const port = await freePort();
    const raw = testConfig(testPrefix('cli-redis'), null);
    const r = await run([writeConfig('redis.json', JSON.stringify(raw))], { REDIS_URL: `redis://127.0.0.1:${port}`, TALLYD_REDIS_URL: '' });
    assert.equal(r.code, 1);
    const lines = plain(r.stderr);
    assert.equal(lines.length, 1, r.stderr);
    assert.match(lines[0]!, new RegExp(`^tallyd: redis unreachable at redis://127\\.0\\.0\\.1:${port}: .*ECONNREFUSED`));
  });

  test('redis.shards other than the prefix recorded: exit 1 with one line naming both numbers and the key', async () => {
    const prefix = testPrefix('cli-shards');
    try {
      // The first start records 4 shards; it then stops cleanly.
      const first = spawn(process.execPath, ['--import', 'tsx', path.join(ROOT, 'src', 'main.ts'),
        writeConfig('four.json', JSON.stringify(testConfig(prefix, null, { redis: { url: REDIS_URL, keyPrefix: prefix, shards: 4 }, log: { level: 'info' } })))],
      { cwd: ROOT, env: process.env, stdio: ['ignore', 'pipe', 'pipe'] });
      let out = '';
      first.stdout.on('data', (d: Buffer) => (out += d.toString()));
      first.stderr.on('data', (d: Buffer) => (out += d.toString()));
      const exited = new Promise<number | null>((resolve) => first.on('exit', (code) => resolve(code)));
      const deadline = Date.now() + 20_000;
      while (!out.includes('tallyd is up')) {
        assert.ok(Date.now() < deadline && first.exitCode === null, `the first start: ${out}`);
        await new Promise((r) => setTimeout(r, 50));
      }
      first.kill('SIGTERM');
      assert.equal(await exited, 0);
      const r = await run([writeConfig('eight.json', JSON.stringify(testConfig(prefix, null, { redis: { url: REDIS_URL, keyPrefix: prefix, shards: 8 } })))]);
      assert.equal(r.code, 1, r.stderr);
      assert.deepEqual(plain(r.stderr), [`tallyd: redis.shards is 8, but the state under redis.keyPrefix "${prefix}" was created with 4 shard(s) `
        + `(${prefix}v${LAYOUT_VERSION}:shards): set redis.shards: 4, or use another keyPrefix for a new state `
        + '(names hash to shards by their number, so it cannot change under a running state)']);
    } finally {
      await cleanup(prefix);
    }
  });

  test('no output path prints a Redis password: --check, warnings, unreachable redis', async () => {
    const pw = 'S3cr@t/pa:ss';
    const enc = encodeURIComponent(pw);
    const port = await freePort();
    const url = `rediss://alice:${enc}@127.0.0.1:${port}/0?password=${enc}`;
    // redis.auth is no key of tallyd's: its warning names the key, not the value (redis.password with a password in url is a config error).
    const file = writeConfig('secret.json', JSON.stringify({ redis: { url, auth: pw }, flushInterval: 1000 }));
    const check = await run(['--check', file], { REDIS_URL: '', TALLYD_REDIS_URL: '' });
    assert.equal(check.code, 1, check.stderr); // the config is good, nothing answers at its Redis
    assert.match(check.stderr, new RegExp(`FAIL redis rediss://alice:\\*\\*\\*@127\\.0\\.0\\.1:${port}/0\\?password=\\*\\*\\*: unreachable`));
    const shown = JSON.parse(check.stdout) as { redis: { url: string } };
    assert.equal(shown.redis.url, `rediss://alice:***@127.0.0.1:${port}/0?password=***`);
    for (const secret of [pw, enc, 'S3cr']) {
      assert.ok(!check.stdout.includes(secret) && !check.stderr.includes(secret), `${secret} in ${check.stdout}${check.stderr}`);
    }
    const raw = testConfig(testPrefix('cli-secret'), null);
    const down = await run([writeConfig('down.json', JSON.stringify(raw))], { REDIS_URL: `redis://:${enc}@127.0.0.1:${port}`, TALLYD_REDIS_URL: '' });
    assert.equal(down.code, 1);
    assert.match(down.stderr, new RegExp(`redis unreachable at redis://:\\*\\*\\*@127\\.0\\.0\\.1:${port}`));
    for (const secret of [pw, enc, 'S3cr']) assert.ok(!down.stdout.includes(secret) && !down.stderr.includes(secret), down.stderr);
  });

  test('a file over 1 MiB or a YAML alias bomb: exit 2 naming the file', async () => {
    const big = writeConfig('big.js', `{ x: "${'a'.repeat(1024 * 1024)}" }`);
    const r = await run(['--check', big]);
    assert.equal(r.code, 2);
    assert.match(plain(r.stderr)[1] ?? '', new RegExp(`^${big}: the config file is too large: \\d+ bytes, the limit is 1048576 \\(1 MiB\\)$`));
    let yaml = 'a: &a [x, x, x, x, x, x, x, x, x]\n';
    for (const [name, prev] of [['b', 'a'], ['c', 'b'], ['d', 'c'], ['e', 'd'], ['f', 'e']] as const) {
      yaml += `${name}: &${name} [${Array(9).fill(`*${prev}`).join(', ')}]\n`;
    }
    const bomb = writeConfig('bomb.yaml', yaml);
    const b = await run(['--check', bomb]);
    assert.equal(b.code, 2);
    assert.deepEqual(plain(b.stderr), ['tallyd: bad config', `${bomb}: too many YAML aliases (more than 100 expansions; an alias bomb?)`]);
  });

  test('SIGTERM while starting (right after it connected to Redis): it finishes starting, then stops cleanly, exit 0', async () => {
    const prefix = testPrefix('cli-early-term');
    const file = writeConfig('early.json', JSON.stringify(testConfig(prefix, null, {
      servers: [{ server: 'udp', address: '127.0.0.1', port: 0 }], log: { level: 'info' }, redis: { url: REDIS_URL, keyPrefix: prefix },
    })));
    const child = spawn(process.execPath, ['--import', 'tsx', path.join(ROOT, 'src', 'main.ts'), file], {
      cwd: ROOT, env: { ...process.env, REDIS_URL: '', TALLYD_REDIS_URL: '' }, stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    let sent = false;
    const onData = (d: Buffer): void => {
      out += d.toString();
      // Inside Daemon.start(): the flush thread, the listeners and the console are still to come.
      if (sent || !out.includes('"msg":"connected to redis"')) return;
      sent = true;
      child.kill('SIGTERM');
    };
    child.stdout.on('data', onData);
    child.stderr.on('data', onData);
    const kill = setTimeout(() => child.kill('SIGKILL'), 20_000);
    const code = await new Promise<number | string | null>((resolve) => child.on('exit', (c, sig) => resolve(c ?? sig)));
    clearTimeout(kill);
    try {
      assert.equal(code, 0, out);
      assert.ok(sent, out);
      const order = ['"msg":"connected to redis"', '"msg":"stopping once started"', '"msg":"tallyd is up"', '"msg":"tallyd stopped"'].map((m) => out.indexOf(m));
      assert.ok(order.every((at, i) => at >= 0 && (i === 0 || at > (order[i - 1] as number))), out);
    } finally {
      await cleanup(prefix);
    }
  });

  test("Etsy statsd's own exampleConfig.js, plus keys statsd never reads and a 100 ms flushInterval, starts", async () => {
    const prefix = testPrefix('cli-etsy');
    const example = readFileSync(path.join(ROOT, 'node_modules', 'statsd', 'exampleConfig.js'), 'utf8');
    const close = example.lastIndexOf('}');
    const extra = `, flushInterval: 100, graphService: "graphite", batch: 200, influxdb: { host: "x" }, flushIntreval: 5,
      address: "127.0.0.1", port: 0, mgmt_address: "127.0.0.1", mgmt_port: 0, graphiteHost: null,
      redis: { url: ${JSON.stringify(REDIS_URL)}, keyPrefix: ${JSON.stringify(prefix)} } }`;
    const file = writeConfig('exampleConfig.js', example.slice(0, close) + extra + example.slice(close + 1));
    const child = spawn(process.execPath, ['--import', 'tsx', path.join(ROOT, 'src', 'main.ts'), file], {
      cwd: ROOT, env: { ...process.env, REDIS_URL: '', TALLYD_REDIS_URL: '' }, stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
    // Resolves on the log line that says it is up, or on exit: no polling.
    const up = new Promise<void>((resolve) => {
      const onData = (d: Buffer): void => {
        out += d.toString();
        if (out.includes('"msg":"tallyd is up"')) resolve();
      };
      child.stdout.on('data', onData);
      child.stderr.on('data', onData);
      void exited.then(() => resolve());
    });
    try {
      await up;
      assert.match(out, /"batchInterval":50,"msg":"tallyd is up"/, out);
      for (const key of ['graphService', 'batch', 'influxdb']) assert.match(out, new RegExp(`config: ${file}: ${key}: unknown key, ignored`));
      assert.match(out, new RegExp(`config: ${file}: flushIntreval: unknown key, ignored \\(did you mean flushInterval\\?\\)`));
    } finally {
      child.kill('SIGTERM');
    }
    assert.equal(await exited, 0, out);
    await cleanup(prefix);
  });

  test('a stop waiting on Carbon: SIGINT twice at once is one stop; a SIGINT 1.5 s later exits at once with 1', async () => {
    const prefix = testPrefix('cli-second-signal');
    const STOP_TIMEOUT_MS = 15_000;
    // Nothing listens at Carbon's port: the periods' lines wait in the outbox, and the stop drains it for stopTimeout.
    // Started as npm starts it (npm_lifecycle_event set), whatever runs this test.
    const child = spawnTallyd(testConfig(prefix, await freePort(), {
      servers: [{ server: 'udp', address: '127.0.0.1', port: 0 }], stopTimeout: STOP_TIMEOUT_MS, log: { level: 'info' },
    }), { npm_lifecycle_event: 'start' });
    try {
      await waitForOutput(child, '"msg":"tallyd is up"');
      await waitForOutput(child, 'delivery lost; its lines stay in the outbox');
      // As a process group's SIGINT arrives under npm start: from the group, and passed on by npm.
      child.proc.kill('SIGINT');
      child.proc.kill('SIGINT');
      await new Promise((r) => setTimeout(r, 1500));
      assert.equal(child.proc.exitCode, null, child.output());
      assert.doesNotMatch(child.output(), /second signal/);
      const second = Date.now();
      child.proc.kill('SIGINT');
      assert.equal(await child.exited, 1, child.output());
      assert.ok(Date.now() - second < 3000, `${Date.now() - second} ms after the second SIGINT:\n${child.output()}`);
      assert.equal(child.output().split('\n').filter((l) => l.includes('"msg":"second signal: exiting without waiting"')).length, 1, child.output());
      assert.doesNotMatch(child.output(), /"msg":"tallyd stopped"/);
    } finally {
      child.proc.kill('SIGKILL');
      await cleanup(prefix);
    }
  });

  test('started without npm, a second SIGINT 300 ms into a stop waiting on Carbon exits at once with 1', async () => {
    const prefix = testPrefix('cli-second-signal-direct');
    const child = spawnTallyd(testConfig(prefix, await freePort(), {
      servers: [{ server: 'udp', address: '127.0.0.1', port: 0 }], stopTimeout: 15_000, log: { level: 'info' },
    }), { npm_lifecycle_event: undefined });
    try {
      await waitForOutput(child, '"msg":"tallyd is up"');
      await waitForOutput(child, 'delivery lost; its lines stay in the outbox');
      child.proc.kill('SIGINT');
      await waitForOutput(child, '"msg":"stopping"');
      await new Promise((r) => setTimeout(r, 300));
      const second = Date.now();
      child.proc.kill('SIGINT');
      assert.equal(await child.exited, 1, child.output());
      assert.ok(Date.now() - second < 3000, `${Date.now() - second} ms after the second SIGINT:\n${child.output()}`);
      assert.match(child.output(), /"msg":"second signal: exiting without waiting"/);
    } finally {
      child.proc.kill('SIGKILL');
      await cleanup(prefix);
    }
  });
});
