/**
 * A user whose install could not build the native addon: the install step
 * says why and how to fix it, and keeps node-gyp's output in a file; tallyd's
 * fallback to node:dgram is a warning that says why, how to build it and
 * where that file is; --check says the same. Runs in a copy of the package
 * without build/ (node_modules linked), with a PATH that has node and
 * nothing to build with.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { cleanup, REDIS_URL, testPrefix } from '../helpers/redis.js';
import { ROOT, testConfig } from '../helpers/tallyd.js';

const copy = mkdtempSync(path.join(tmpdir(), 'tallyd-nonative-'));
const binDir = path.join(copy, '.bin');
const buildLog = path.join(copy, 'native-build.log');

function run(args: string[], until?: string): Promise<{ code: number | string; out: string }> {
  return new Promise((resolve) => {
    const proc = spawn(process.execPath, args, { cwd: copy, env: { HOME: copy, PATH: binDir }, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let stopped = false;
    const onData = (d: Buffer): void => {
      out += d.toString();
      if (until === undefined || stopped || !out.includes(until)) return;
      stopped = true;
      proc.kill('SIGTERM');
    };
    proc.stdout.on('data', onData);
    proc.stderr.on('data', onData);
    const kill = setTimeout(() => proc.kill('SIGKILL'), 120_000);
    proc.on('exit', (code, sig) => {
      clearTimeout(kill);
      resolve({ code: code ?? sig ?? -1, out });
    });
  });
}

before(() => {
  for (const p of ['src', 'scripts', 'binding.gyp', 'package.json', 'tsconfig.json']) cpSync(path.join(ROOT, p), path.join(copy, p), { recursive: true });
  symlinkSync(path.join(ROOT, 'node_modules'), path.join(copy, 'node_modules'));
  mkdirSync(binDir);
  symlinkSync(process.execPath, path.join(binDir, 'node'));
});
after(() => rmSync(copy, { recursive: true, force: true }));

describe('no native addon', () => {
  test('the install step: exit 0, says why, what to install and what to run, keeps the full output', async () => {
    const r = await run([path.join(copy, 'scripts', 'build-native.mjs')]);
    assert.equal(r.code, 0, r.out);
    assert.match(r.out, /could not build the native addon; tallyd reads UDP with node:dgram/);
    assert.match(r.out, /Could not find any Python/);
    assert.match(r.out, /sudo apt-get install python3 make g\+\+\), then `npm rebuild tallyd`/);
    assert.ok(r.out.includes(`Full output: ${buildLog}`), r.out);
    assert.match(readFileSync(buildLog, 'utf8'), /node-gyp.* rebuild[^]*Could not find any Python/);
    assert.ok(!existsSync(path.join(copy, 'build', 'Release', 'tallyd_native.node')));
  });

  test('the start: a warning that says why, how to build it, and names the build log; --check says the same', async () => {
    assert.ok(existsSync(buildLog), 'the install test ran first');
    const prefix = testPrefix('nonative');
    const file = path.join(copy, 'config.json');
    writeFileSync(file, JSON.stringify(testConfig(prefix, null, { redis: { url: REDIS_URL, keyPrefix: prefix }, log: { level: 'info' } })));
    try {
      const r = await run(['--import', 'tsx', path.join(copy, 'src', 'main.ts'), file], '"msg":"tallyd is up"');
      assert.equal(r.code, 0, r.out);
      const warn = r.out.split('\n').find((l) => l.includes('native UDP reader not available'));
      assert.ok(warn !== undefined, r.out);
      const msg = (JSON.parse(warn) as { level: string; msg: string });
      assert.equal(msg.level, 'warn');
      assert.match(msg.msg, /so UDP is read with node:dgram .*: it was not built .*install python3, make and g\+\+ .*`npm rebuild tallyd`/);
      assert.ok(msg.msg.endsWith(`the last build's output is in ${buildLog}`), msg.msg);
      assert.match(r.out, /"reader":"dgram"/);

      const c = await run(['--import', 'tsx', path.join(copy, 'src', 'main.ts'), '--check', file]);
      assert.equal(c.code, 0, c.out);
      assert.match(c.out, /\nok {3}native addon: not loaded: it was not built .*UDP is read with node:dgram.*npm rebuild tallyd/);
    } finally {
      await cleanup(prefix);
    }
  });
});
