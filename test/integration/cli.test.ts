/**
 * The command line as a user meets it: --help and --version, a bad config
 * (exit 2, every problem named), a port in use and an unreachable Redis
 * (exit 1, one line naming what and where).
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import dgram from 'node:dgram';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, test } from 'node:test';
import { freePort } from '../helpers/carbon.js';
import { cleanup, testPrefix } from '../helpers/redis.js';
import { ROOT, testConfig } from '../helpers/tallyd.js';

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
    const file = writeConfig('bad.js', '{ flushInteval: 1000, percentThreshold: "ninety", mgmt_port: 70000 }');
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
});
