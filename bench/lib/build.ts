/**
 * Keeps dist/ (what the bench runs as tallyd) in step with src/.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, readdirSync, statSync } from 'node:fs';
import path from 'node:path';
import { ROOT } from './servers.js';

/** Rebuilds dist/ when a file under src/ is newer than dist/main.js. Returns what was benchmarked. */
export function ensureBuilt(build: boolean): string {
  const main = path.join(ROOT, 'dist', 'main.js');
  const newest = (dir: string): number =>
    readdirSync(dir, { withFileTypes: true }).reduce((t, e) => {
      const p = path.join(dir, e.name);
      return Math.max(t, e.isDirectory() ? newest(p) : statSync(p).mtimeMs);
    }, 0);
  if (existsSync(main) && statSync(main).mtimeMs >= newest(path.join(ROOT, 'src'))) return 'dist/ up to date';
  if (!build) {
    console.log('warning: dist/ is older than src/ (--no-build): benchmarking the old build');
    return 'stale dist/ (--no-build)';
  }
  console.log('building tallyd (npm run build) ...');
  try {
    execFileSync('npm', ['run', '--silent', 'build'], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
    return 'built';
  } catch (err) {
    if (!existsSync(main)) throw err;
    const e = err as { stdout?: Buffer; stderr?: Buffer };
    const why = `${e.stdout?.toString() ?? ''}${e.stderr?.toString() ?? ''}`.trim().split('\n').slice(0, 6).join('\n');
    // tsc emits JavaScript despite type errors, so dist/ is src/ as it is now, maybe without the latest Lua scripts.
    console.log(`warning: npm run build failed; benchmarking dist/ as it is:\n${why}`);
    return `build failed, dist/ as tsc left it: ${why}`;
  }
}

