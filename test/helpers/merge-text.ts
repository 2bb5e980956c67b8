/**
 * A merge's ARGV (mergeBatch-11's, from ARGV[10] on: encodeMergeParts) as
 * plain text, for tests that look for what a batch carried: each counter as
 * `name value`, each timer as `name count samples,...`, each set member as
 * `name\nmember`, then the gauges and passthrough ARGV as they are; space
 * separated, with a space at each end (so ` name value ` matches whole).
 */
import type { MergeArg } from '../../src/aggregate/merge-args.js';
import { readParts } from '../../src/store/packed-parts.js';

export function mergeText(args: readonly MergeArg[]): string {
  const out: string[] = [];
  for (const part of args.slice(0, 2)) {
    if (!Buffer.isBuffer(part)) continue;
    readParts(part, {
      part: () => {},
      end: () => {},
      counter: (n, v) => out.push(`${n} ${v}`),
      timer: (n, count, samples, from, to) => out.push(`${n} ${count} ${[...samples.subarray(from, to)].join(',')}`),
      gauge: (n, delta, v) => out.push(`${n} ${delta ? 'd' : 's'}${v}`),
      set: (n, members) => {
        for (const m of members) out.push(`${n}\n${m}`);
      },
    });
  }
  for (const a of args.slice(4)) out.push(String(a));
  return ` ${out.join(' ')} `;
}
