#!/usr/bin/env node
/**
 * `npm install` step: builds the optional native addon (src/native/*.c: the
 * UDP reader, the ZeroMQ scanner and inflater -> build/Release/tallyd_native.node)
 * with node-gyp. It never fails the install: without Linux, a C compiler, make,
 * python3 or Node's headers, tallyd reads UDP with node:dgram and ZeroMQ
 * messages with node:zlib and JavaScript instead (slower; see
 * bench/README.md). TALLYD_SKIP_NATIVE=1 skips it.
 *
 * npm 11 shows a dependency's install script output only when the script
 * fails (or with --foreground-scripts), and this one never fails. So a failed
 * build is told three ways: on stderr (shown for `npm install` in a clone and
 * with --foreground-scripts), on the terminal (/dev/tty) when there is one,
 * and in full in native-build.log at the package root, which tallyd's
 * fallback warning names (src/native/addon.ts).
 */
import { spawnSync } from 'node:child_process';
import { closeSync, existsSync, openSync, rmSync, writeFileSync, writeSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';

const root = path.resolve(import.meta.dirname, '..');
const say = (msg) => process.stderr.write(`tallyd: ${msg}\n`);
const buildLog = path.join(root, 'native-build.log');

/** Writes to the controlling terminal, past npm's capture of the script's output; false without one. */
function toTerminal(text) {
  if (process.stderr.isTTY) return false; // stderr already reaches it
  try {
    const fd = openSync('/dev/tty', 'w');
    writeSync(fd, text);
    closeSync(fd);
    return true;
  } catch {
    return false;
  }
}

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
  rmSync(buildLog, { force: true });
  say('built the native addon (build/Release/tallyd_native.node)');
} else {
  // The lines that say what went wrong, not node-gyp's stack trace.
  const lines = `${res.stdout ?? ''}${res.stderr ?? ''}${res.error ? String(res.error) : ''}`.trim().split('\n');
  const why = lines.filter((l) => /error|not found|no such file|cannot|could not|failed/i.test(l) &&
    !/gyp ERR! (stack (?!Error)|System|command|cwd|node -v|node-gyp -v|not ok|configure error *$)/.test(l));
  const out = (why.length ? why : lines).slice(-6).join('\n');
  const full = `${res.stdout ?? ''}${res.stderr ?? ''}${res.error ? `${String(res.error)}\n` : ''}`;
  writeFileSync(buildLog, `$ ${[cmd, ...args].join(' ')}\n(exit status ${res.status ?? res.signal})\n${full}`);
  const msg = `could not build the native addon; tallyd reads UDP with node:dgram (slower per datagram). node-gyp said:\n${out}\n` +
    `Needs python3, make and g++ (Debian/Ubuntu: sudo apt-get install python3 make g++), then \`npm rebuild tallyd\` ` +
    `(in a clone: node scripts/build-native.mjs). Full output: ${buildLog}`;
  say(msg);
  toTerminal(`tallyd: ${msg}\n`);
}
process.exit(0);
