/**
 * Encodes a Batch as the ARGV of mergeBatch-15.lua (see the script's header).
 * Timer samples travel packed (store/sample-codec.ts) so percentiles stay
 * exact; numbers travel as String(x), the shortest text that round-trips.
 *
 * With several shards (DESIGN "Shards") a sealed batch is split into one
 * ARGV per shard that holds any of its names: each distinct name (a counter
 * and a timer of one name are two) is hashed once, here, at seal time, never
 * per sample; a passthrough line goes by the line itself.
 */
import type { Batch } from './batch.js';
import { chunkLines } from '../sink/graphite/chunk.js';
import { FIELD_SEP } from '../store/keys.js';
import { packSamples } from '../store/sample-codec.js';

export type MergeArg = string | Buffer;

/** One shard's share of a batch: the merge ARGV and the samples it carries (for late_samples). */
export interface MergePart {
  readonly shard: number;
  readonly args: MergeArg[];
  readonly samples: number;
}

/** Which shard a stored name, or a passthrough line, belongs to (ShardMap.of). */
export type ShardOf = (name: string) => number;

/** The whole batch as one ARGV (one shard). */
export function encodeMerge(batch: BatchView, batchId: string): MergeArg[] {
  return encodeMergeParts(batch, batchId, 1, () => 0)[0]!.args;
}

/**
 * The batch's merge ARGV per shard, in shard order, for the shards that get
 * anything; shardCount 1 gives one part (or none for an empty batch) without
 * hashing a name. Within a part, names keep the batch's first-seen order.
 */
export function encodeMergeParts(batch: BatchView, batchId: string, shardCount: number, shardOf: ShardOf): MergePart[] {
  const one = shardCount === 1;
  const parts = new Parts(shardCount);

  const counters = batch.counterNames;
  const cs = one ? null : shardsOf(counters, shardOf);
  parts.open();
  for (let i = 0; i < counters.length; i++) {
    const s = cs === null ? 0 : cs[i]!;
    parts.item(s, counters[i]!, String(batch.counterValue(i)));
    parts.samples[s]! += batch.counterSampleCount(i);
  }
  parts.close();

  const timers = batch.timerNames;
  const ts = one ? null : shardsOf(timers, shardOf);
  const samples = batch.timerSampleArray;
  parts.open();
  for (let i = 0; i < timers.length; i++) {
    const s = ts === null ? 0 : ts[i]!;
    const at = batch.timerOffset(i);
    const n = batch.timerLength(i);
    parts.item(s, timers[i]! + FIELD_SEP + batchId, packSamples(samples, at, at + n));
    parts.samples[s]! += n;
  }
  parts.close();
  parts.open();
  for (let i = 0; i < timers.length; i++) parts.item(ts === null ? 0 : ts[i]!, timers[i]!, String(batch.timerCount(i)));
  parts.close();

  const gauges = batch.gaugeNames;
  const gs = one ? null : shardsOf(gauges, shardOf);
  parts.open();
  for (let i = 0; i < gauges.length; i++) {
    const s = gs === null ? 0 : gs[i]!;
    parts.item3(s, gauges[i]!, batch.gaugeIsDelta(i) ? 'd' : 's', String(batch.gaugeValue(i)));
    parts.samples[s]! += batch.gaugeSampleCount(i);
  }
  parts.close();

  parts.open();
  for (const [name, entry] of batch.sets) {
    const s = one ? 0 : shardOf(name);
    for (const member of entry.members) parts.item1(s, name + FIELD_SEP + member);
    parts.samples[s]! += entry.samples;
  }
  parts.close();

  const lines = batch.passthroughLines;
  if (one) {
    parts.chunks(0, lines);
  } else {
    const byShard: string[][] = Array.from({ length: shardCount }, () => []);
    for (const line of lines) byShard[shardOf(line)]!.push(line);
    for (let s = 0; s < shardCount; s++) parts.chunks(s, byShard[s]!);
  }
  if (one && parts.used[0] === 0) parts.used[0] = 1; // a single shard's part exists even for an empty batch (encodeMerge)
  return parts.result();
}

/** What encodeMergeParts reads of a Batch. */
export type BatchView = Pick<Batch, 'counterNames' | 'counterValue' | 'counterSampleCount' | 'timerNames' | 'timerSampleArray'
  | 'timerOffset' | 'timerLength' | 'timerCount' | 'gaugeNames' | 'gaugeValue' | 'gaugeIsDelta' | 'gaugeSampleCount' | 'sets'
  | 'passthroughLines'>;

function shardsOf(names: readonly string[], shardOf: ShardOf): Uint16Array {
  const out = new Uint16Array(names.length);
  for (let i = 0; i < names.length; i++) out[i] = shardOf(names[i]!);
  return out;
}

/** One ARGV per shard, built section by section: each section opens with its item count, filled in at close. */
class Parts {
  readonly args: MergeArg[][];
  readonly samples: number[];
  /** Items (of any section) per shard: a shard with none gets no part. */
  readonly used: number[];
  private readonly countAt: number[];
  private readonly counts: number[];

  constructor(private readonly n: number) {
    this.args = Array.from({ length: n }, () => []);
    this.samples = new Array<number>(n).fill(0);
    this.used = new Array<number>(n).fill(0);
    this.countAt = new Array<number>(n).fill(0);
    this.counts = new Array<number>(n).fill(0);
  }

  open(): void {
    for (let s = 0; s < this.n; s++) {
      this.countAt[s] = this.args[s]!.push('0') - 1;
      this.counts[s] = 0;
    }
  }

  item1(s: number, a: MergeArg): void {
    this.args[s]!.push(a);
    this.counts[s]!++;
  }

  item(s: number, a: MergeArg, b: MergeArg): void {
    this.args[s]!.push(a, b);
    this.counts[s]!++;
  }

  item3(s: number, a: MergeArg, b: MergeArg, c: MergeArg): void {
    this.args[s]!.push(a, b, c);
    this.counts[s]!++;
  }

  close(): void {
    for (let s = 0; s < this.n; s++) {
      const c = this.counts[s]!;
      if (c === 0) continue;
      this.args[s]![this.countAt[s]!] = String(c);
      this.used[s]! += c;
    }
  }

  /** The last section: passthrough lines as outbox chunks, one sample each. */
  chunks(s: number, lines: readonly string[]): void {
    const chunks = chunkLines(lines);
    this.args[s]!.push(String(chunks.length), ...chunks);
    this.samples[s]! += lines.length;
    this.used[s]! += lines.length;
  }

  result(): MergePart[] {
    const out: MergePart[] = [];
    for (let s = 0; s < this.n; s++) if (this.used[s]! > 0) out.push({ shard: s, args: this.args[s]!, samples: this.samples[s]! });
    return out;
  }
}
