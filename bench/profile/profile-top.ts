/**
 * The top self-time functions of a V8 CPU profile (what `node --cpu-prof` writes).
 *
 *   node --import tsx bench/profile/profile-top.ts <file.cpuprofile> [top=15]
 *
 * Self time per function (name + file:line), summed over every node of the
 * call tree it appears in, as a share of all samples (idle and GC included,
 * as V8 reports them: `(idle)`, `(garbage collector)`, `(program)`).
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';

interface CallFrame {
  functionName: string;
  url: string;
  lineNumber: number;
}
interface ProfileNode {
  id: number;
  callFrame: CallFrame;
  hitCount?: number;
}
interface Profile {
  nodes: ProfileNode[];
  samples?: number[];
  timeDeltas?: number[];
}

const [file, topArg] = process.argv.slice(2);
if (file === undefined) {
  console.error('usage: node --import tsx bench/profile/profile-top.ts <file.cpuprofile> [top]');
  process.exit(2);
}
const top = Number(topArg ?? 15);
const prof = JSON.parse(readFileSync(file, 'utf8')) as Profile;

// Time per node from the sample stream (each sample's time is the delta that follows it).
const nodeTime = new Map<number, number>();
const samples = prof.samples ?? [];
const deltas = prof.timeDeltas ?? [];
for (let i = 0; i < samples.length; i++) {
  const id = samples[i]!;
  nodeTime.set(id, (nodeTime.get(id) ?? 0) + (deltas[i + 1] ?? 0));
}
const byFn = new Map<string, number>();
let total = 0;
for (const n of prof.nodes) {
  const t = nodeTime.get(n.id) ?? 0;
  if (t === 0) continue;
  const f = n.callFrame;
  const where = f.url === '' ? '' : ` ${path.basename(f.url)}:${f.lineNumber + 1}`;
  const key = `${f.functionName || '(anonymous)'}${where}`;
  byFn.set(key, (byFn.get(key) ?? 0) + t);
  total += t;
}
console.log(`${file}: ${(total / 1000).toFixed(0)} ms sampled`);
console.log('self %   self ms  function');
for (const [key, t] of [...byFn].sort((a, b) => b[1] - a[1]).slice(0, top)) {
  console.log(`${((100 * t) / total).toFixed(1).padStart(6)} ${(t / 1000).toFixed(0).padStart(9)}  ${key}`);
}
