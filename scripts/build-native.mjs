#!/usr/bin/env node
/**
 * `npm install` step: builds the optional native addon (src/native/*.c: the
 * UDP reader, the ZeroMQ scanner and inflater -> build/Release/tallyd_native.node)
 * with node-gyp. It never fails the install: without Linux, a C compiler, make,
 * python3 or Node's headers, tallyd reads UDP with node:dgram and ZeroMQ
 * messages with node:zlib and JavaScript instead (slower; see README
 * "Performance"). TALLYD_SKIP_NATIVE=1 skips it.
 */
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';

const root = path.resolve(import.meta.dirname, '..');
const say = (msg) => process.stderr.write(`tallyd: ${msg}\n`);

if (process.env.TALLYD_SKIP_NATIVE === '1') {
  say('TALLYD_SKIP_NATIVE=1: not building the native UDP reader; UDP is read with node:dgram');
  process.exit(0);
}
if (process.platform !== 'linux') {
  say(`the native UDP reader is Linux-only (this is ${process.platform}); UDP is read with node:dgram`);
  process.exit(0);
}

/** node-gyp: the one npm runs this script with, else npm's own copy, else one on PATH. */
function nodeGyp() {
  const fromNpm = process.env.npm_config_node_gyp;
  if (fromNpm && existsSync(fromNpm)) return [process.execPath, fromNpm];
  const npmDir = path.resolve(path.dirname(process.execPath), '..', 'lib', 'node_modules', 'npm');
  const bundled = path.join(npmDir, 'node_modules', 'node-gyp', 'bin', 'node-gyp.js');
  if (existsSync(bundled)) return [process.execPath, bundled];
  try {
    return [process.execPath, createRequire(import.meta.url).resolve('node-gyp/bin/node-gyp.js')];
  } catch {
    return ['node-gyp'];
  }
}

const [cmd, ...pre] = nodeGyp();
// Node's headers: npm passes its nodedir setting as npm_config_nodedir; a system Node keeps them under <prefix>/include/node.
const args = [...pre, 'rebuild'];
const prefix = path.resolve(path.dirname(process.execPath), '..');
if (!process.env.npm_config_nodedir && existsSync(path.join(prefix, 'include', 'node', 'node_api.h'))) args.push(`--nodedir=${prefix}`);
const res = spawnSync(cmd, args, { cwd: root, encoding: 'utf8', timeout: 180_000 });
if (res.status === 0 && existsSync(path.join(root, 'build', 'Release', 'tallyd_native.node'))) {
  say('built the native addon (build/Release/tallyd_native.node)');
} else {
  // The lines that say what went wrong, not node-gyp's stack trace.
  const lines = `${res.stdout ?? ''}${res.stderr ?? ''}${res.error ? String(res.error) : ''}`.trim().split('\n');
  const why = lines.filter((l) => /error|not found|no such file|cannot|failed/i.test(l) && !/gyp ERR! (stack|System|command|cwd|node -v|node-gyp -v|not ok)/.test(l));
  const out = (why.length ? why : lines).slice(-6).join('\n');
  say(`could not build the native UDP reader; UDP is read with node:dgram (slower per datagram). node-gyp said:\n${out}`);
}
process.exit(0);
