/**
 * log.format as a user meets it: readable lines on a terminal (a real pty,
 * from util-linux's `script`), JSON lines into a pipe, either one when asked;
 * a bad log.format or redis.embedded is a config error (exit 2).
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, describe, test } from 'node:test';
import { cleanup, REDIS_URL, testPrefix } from '../helpers/redis.js';
import { ROOT, testConfig, type RawConfig } from '../helpers/tallyd.js';

const dir = mkdtempSync(path.join(tmpdir(), 'tallyd-logs-'));
after(() => rmSync(dir, { recursive: true, force: true }));

/** Runs tallyd (through `script` for a terminal) until it logs that it is up, then SIGTERMs it; everything it wrote. */
function runUntilUp(raw: RawConfig, terminal: boolean): Promise<{ code: number | string; out: string }> {
  const file = path.join(dir, `${Math.random().toString(36).slice(2)}.json`);
  writeFileSync(file, JSON.stringify(raw));
  const argv = [process.execPath, '--import', 'tsx', path.join(ROOT, 'src', 'main.ts'), file];
  // `script -c` runs the command with `$SHELL -c` (/bin/sh when SHELL is unset, as under CI). dash does not exec
  // it: it stays the pty's session leader, gets the Ctrl-C's SIGINT too, waits for tallyd, then kills itself with
  // it, and `script -e` reports 130 for tallyd's clean 0. `exec` makes tallyd the pty's only process under any
  // shell, and SHELL is pinned so that the test runs the same here and under CI.
  const [cmd, ...args] = terminal ? ['script', '-qfec', `exec ${argv.join(' ')}`, '/dev/null'] : argv;
  const env: NodeJS.ProcessEnv = { ...process.env, SHELL: '/bin/sh' };
  delete env.REDIS_URL;
  delete env.TALLYD_REDIS_URL;
  return new Promise((resolve) => {
    const proc = spawn(cmd!, args, { cwd: ROOT, env, stdio: ['pipe', 'pipe', 'pipe'] });
    let out = '';
    let stopped = false;
    const onData = (d: Buffer): void => {
      out += d.toString();
      if (stopped || !/tallyd is up/.test(out)) return;
      stopped = true;
      // On the terminal, Ctrl-C: the pty sends SIGINT to tallyd.
      if (terminal) proc.stdin.write('\x03');
      else proc.kill('SIGTERM');
    };
    proc.stdout.on('data', onData);
    proc.stderr.on('data', onData);
    const kill = setTimeout(() => proc.kill('SIGKILL'), 60_000);
    proc.on('exit', (code, sig) => {
      clearTimeout(kill);
      resolve({ code: code ?? sig ?? -1, out });
    });
  });
}

function config(prefix: string, format?: string): RawConfig {
  return testConfig(prefix, null, {
    servers: [{ server: 'udp', address: '127.0.0.1', port: 0 }],
    redis: { url: REDIS_URL, keyPrefix: prefix },
    log: format === undefined ? { level: 'info' } : { level: 'info', format },
  });
}

const PRETTY_UDP = /^\[\d\d:\d\d:\d\d\.\d{3}\] INFO: \[udp\] listening for statsd on udp/m;

/** Without colours (ESC [ n m) and carriage returns. */
function plainText(out: string): string {
  return out.split('\u001b').join('').replace(/\[\d+m/g, '').replace(/\r/g, '');
}

describe('log.format', () => {
  test('"pretty" into a pipe: one readable line per entry, no JSON', async () => {
    const prefix = testPrefix('logs-pretty');
    try {
      const r = await runUntilUp(config(prefix, 'pretty'), false);
      assert.equal(r.code, 0, r.out);
      assert.match(r.out, PRETTY_UDP);
      assert.match(r.out, /INFO: tallyd stopped/);
      assert.ok(!r.out.split('\n').some((l) => l.startsWith('{')), r.out);
    } finally {
      await cleanup(prefix);
    }
  });

  test('"auto" (the default) into a pipe: JSON lines', async () => {
    const prefix = testPrefix('logs-json');
    try {
      const r = await runUntilUp(config(prefix), false);
      assert.equal(r.code, 0, r.out);
      const lines = r.out.split('\n').filter((l) => l !== '');
      assert.ok(lines.length > 3 && lines.every((l) => (JSON.parse(l) as { msg?: unknown }).msg !== undefined), r.out);
    } finally {
      await cleanup(prefix);
    }
  });

  test('"auto" on a terminal: readable lines', async () => {
    const prefix = testPrefix('logs-tty');
    try {
      const r = await runUntilUp(config(prefix), true);
      assert.equal(r.code, 0, r.out);
      assert.match(plainText(r.out), PRETTY_UDP);
      assert.ok(!r.out.includes('"msg":"tallyd is up"'), r.out);
    } finally {
      await cleanup(prefix);
    }
  });

  test('a bad log.format or redis.embedded: exit 2 naming the key', async () => {
    const file = path.join(dir, 'bad.json');
    writeFileSync(file, JSON.stringify({ log: { format: 'xml' }, redis: { embedded: 'yes' } }));
    const proc = spawn(process.execPath, ['--import', 'tsx', path.join(ROOT, 'src', 'main.ts'), '--check', file], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
    let err = '';
    proc.stderr.on('data', (d: Buffer) => (err += d.toString()));
    const code = await new Promise<number | null>((resolve) => proc.on('exit', (c) => resolve(c)));
    assert.equal(code, 2, err);
    assert.ok(err.includes(`${file}: redis.embedded: must be one of "auto", "always", "never", got "yes"`), err);
    assert.ok(err.includes(`${file}: log.format: must be one of "auto", "pretty", "json", got "xml"`), err);
  });
});
