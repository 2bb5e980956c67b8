/**
 * Encodes a Batch as the ARGV of merge-8.lua (see the script's header).
 * Timer samples travel packed as float64 little-endian so percentiles stay
 * exact; numbers travel as String(x), the shortest text that round-trips.
 */
import type { Batch } from './batch.js';
import { chunkLines } from '../sink/graphite/chunk.js';
import { FIELD_SEP } from '../store/keys.js';

export type MergeArg = string | Buffer;

export function packSamples(values: readonly number[]): Buffer {
  const buf = Buffer.allocUnsafe(values.length * 8);
  for (let i = 0; i < values.length; i++) buf.writeDoubleLE(values[i] as number, i * 8);
  return buf;
}

export function unpackSamples(buf: Buffer, into: number[]): void {
  for (let off = 0; off + 8 <= buf.length; off += 8) into.push(buf.readDoubleLE(off));
}

export function encodeMerge(batch: Batch, batchId: string): MergeArg[] {
  const args: MergeArg[] = [];
  args.push(String(batch.counters.size));
  for (const [name, v] of batch.counters) args.push(name, String(v));
  args.push(String(batch.timers.size));
  for (const [name, values] of batch.timers) args.push(name + FIELD_SEP + batchId, packSamples(values));
  args.push(String(batch.timerCounts.size));
  for (const [name, v] of batch.timerCounts) args.push(name, String(v));
  args.push(String(batch.gauges.size));
  for (const [name, op] of batch.gauges) args.push(name, op.delta ? 'd' : 's', String(op.value));
  let members = 0;
  for (const m of batch.sets.values()) members += m.size;
  args.push(String(members));
  for (const [name, m] of batch.sets) for (const member of m) args.push(name + FIELD_SEP + member);
  const chunks = chunkLines(batch.passthroughLines);
  args.push(String(chunks.length), ...chunks);
  return args;
}
