#!/usr/bin/env node
/**
 * The one build of dist/, for `npm run build` (and so npm's prepare) and for
 * `npm start` when dist/ is stale (scripts/start.mjs): from an empty dist/,
 * so no file of an older build stays; tsc, then the files tsc does not copy:
 * the Lua scripts and the status page.
 */
import { spawnSync } from 'node:child_process';
import { cpSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { pathToFileURL } from 'node:url';

const root = path.resolve(import.meta.dirname, '..');

/** Files of src/ that dist/ needs as they are, beside what tsc writes. */
export const COPIED = [['src', 'store', 'scripts'], ['src', 'http', 'page']];

/** Builds dist/; returns false when tsc failed (its errors are on stderr). */
export function build() {
  rmSync(path.join(root, 'dist'), { recursive: true, force: true });
  const tsc = createRequire(import.meta.url).resolve('typescript/bin/tsc');
  const res = spawnSync(process.execPath, [tsc, '-p', path.join(root, 'tsconfig.build.json')], { cwd: root, stdio: 'inherit' });
  if (res.status !== 0) return false;
  for (const parts of COPIED) cpSync(path.join(root, ...parts), path.join(root, 'dist', ...parts.slice(1)), { recursive: true });
  return true;
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  process.exit(build() ? 0 : 1);
}
