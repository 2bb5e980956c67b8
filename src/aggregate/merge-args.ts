/**
 * Encodes a Batch as the ARGV of mergeBatch-15.lua (see the script's header).
 * Timer samples travel packed (store/sample-codec.ts) so percentiles stay
 * exact; numbers travel as String(x), the shortest text that round-trips.
 */
import type { Batch } from './batch.js';
import { chunkLines } from '../sink/graphite/chunk.js';
import { FIELD_SEP } from '../store/keys.js';
import { packSamples } from '../store/sample-codec.js';

export type MergeArg = string | Buffer;

export function encodeMerge(batch: Batch, batchId: string): MergeArg[] {
  const args: MergeArg[] = [];
  const counters = batch.counterNames;
  args.push(String(counters.length));
  for (let i = 0; i < counters.length; i++) args.push(counters[i]!, String(batch.counterValue(i)));
  const timers = batch.timerNames;
  args.push(String(timers.length));
  const samples = batch.timerSampleArray;
  for (let i = 0; i < timers.length; i++) {
    const at = batch.timerOffset(i);
    args.push(timers[i]! + FIELD_SEP + batchId, packSamples(samples, at, at + batch.timerLength(i)));
  }
  args.push(String(timers.length));
  for (let i = 0; i < timers.length; i++) args.push(timers[i]!, String(batch.timerCount(i)));
  const gauges = batch.gaugeNames;
  args.push(String(gauges.length));
  for (let i = 0; i < gauges.length; i++) args.push(gauges[i]!, batch.gaugeIsDelta(i) ? 'd' : 's', String(batch.gaugeValue(i)));
  let members = 0;
  for (const m of batch.sets.values()) members += m.size;
  args.push(String(members));
  for (const [name, m] of batch.sets) for (const member of m) args.push(name + FIELD_SEP + member);
  const chunks = chunkLines(batch.passthroughLines);
  args.push(String(chunks.length), ...chunks);
  return args;
}
