#!/usr/bin/env node
/**
 * `npm start [-- args]`: builds dist/ only when it is older than what it is
 * built from (src/, tsconfig*.json, package.json), then runs tallyd in this
 * same process, so npm's SIGTERM reaches tallyd itself (package.json execs
 * this script: no shell stays between npm and node). Without a config file
 * argument it uses config/tallyd.conf.js; `npm start -- my.conf.js` uses that.
 */
import { existsSync, readdirSync, statSync } from 'node:fs';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { build } from './build.mjs';

const root = path.resolve(import.meta.dirname, '..');
const entry = path.join(root, 'dist', 'main.js');

/** Newest mtime (ms) of the files under dir, recursively. */
function newest(dir) {
  let max = 0;
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, e.name);
    max = Math.max(max, e.isDirectory() ? newest(p) : statSync(p).mtimeMs);
  }
  return max;
}

function stale() {
  if (!existsSync(entry)) return 'dist/main.js is missing';
  const built = statSync(entry).mtimeMs;
  const inputs = ['tsconfig.json', 'tsconfig.build.json', 'package.json'].map((f) => path.join(root, f)).filter((f) => existsSync(f));
  const src = path.join(root, 'src');
  const newestInput = Math.max(...inputs.map((f) => statSync(f).mtimeMs), existsSync(src) ? newest(src) : 0);
  return newestInput > built ? 'sources changed since the last build' : null;
}

const why = existsSync(path.join(root, 'tsconfig.build.json')) ? stale() : null;
if (why !== null) {
  process.stderr.write(`tallyd: building dist/ (${why})\n`);
  if (!build()) {
    process.stderr.write('tallyd: the build failed (tsc above); not starting\n');
    process.exit(2);
  }
}

const args = process.argv.slice(2);
if (!args.some((a) => !a.startsWith('-'))) {
  const shipped = path.join(root, 'config', 'tallyd.conf.js');
  // Options alone (--check) apply to the shipped config; --help and --version need none.
  if (!args.some((a) => ['-h', '--help', '-v', '--version'].includes(a))) process.argv.push(shipped);
}
await import(pathToFileURL(entry).href);
