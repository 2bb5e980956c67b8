/**
 * Encodes a Batch as the batch's part of mergeBatch-11.lua's ARGV (see the
 * script's header), from ARGV[10] on: its counters, timers and sets packed
 * into one part (store/packed-parts.ts: names and float64 values, so timer
 * samples and sums stay exact), tallyd's own counters (the exempt prefix,
 * never dropped) in a part of their own, the part's name count and a few of
 * its names (for the count of a part the period's byte budget refuses), then
 * the gauges as ARGV (name, mode, String(x)) and the passthrough lines as
 * outbox chunks.
 *
 * With several shards (DESIGN "Shards") a sealed batch is split into one
 * ARGV per shard that holds any of its names: each distinct name (a counter
 * and a timer of one name are two) is hashed once, here, at seal time, never
 * per sample; a passthrough line goes by the line itself.
 */
import type { Batch } from './batch.js';
import { chunkLines } from '../sink/graphite/chunk.js';
import { chunkLineCount } from '../store/chunk-lines.js';
import { PartWriter } from '../store/packed-parts.js';

export type MergeArg = string | Buffer;

/** One shard's share of a batch: the merge ARGV and the samples it carries (for late_samples). */
export interface MergePart {
  readonly shard: number;
  readonly args: MergeArg[];
  readonly samples: number;
}

/** Which shard a stored name, or a passthrough line, belongs to (ShardMap.of). */
export type ShardOf = (name: string) => number;

/** Names of a part quoted when the period's byte budget refuses it. */
const EXAMPLES = 5;

/** The whole batch as one ARGV (one shard). */
export function encodeMerge(batch: BatchView, exemptPrefix = ''): MergeArg[] {
  return encodeMergeParts(batch, 1, () => 0, exemptPrefix)[0]!.args;
}

/** One shard's share while a batch is encoded. */
class ShardShare {
  readonly part = new PartWriter();
  readonly own = new PartWriter();
  readonly examples: string[] = [];
  readonly gauges: MergeArg[] = [];
  samples = 0;
  passthrough: string[] = [];

  named(name: string): void {
    if (this.examples.length < EXAMPLES) this.examples.push(name);
  }

  get used(): boolean {
    return this.part.items + this.own.items + this.gauges.length + this.passthrough.length > 0;
  }

  args(): MergeArg[] {
    const part = this.part.items > 0 ? this.part.finish() : '';
    const own = this.own.items > 0 ? this.own.finish() : '';
    const args: MergeArg[] = [part, own, String(this.part.items), this.examples.join('\n'), String(this.gauges.length / 3)];
    for (const g of this.gauges) args.push(g);
    const chunks = chunkLines(this.passthrough);
    args.push(String(chunks.length));
    for (const c of chunks) args.push(c, String(chunkLineCount(c)));
    return args;
  }
}

/**
 * The batch's merge ARGV per shard, in shard order, for the shards that get
 * anything; shardCount 1 gives one part (or an empty one for an empty batch) without
 * hashing a name. Within a part, names keep the batch's first-seen order.
 * Counters named under exemptPrefix go in the own part. (The batch id is not
 * in them: Store.merge sends it, for the dedupe, and no field carries it.)
 */
export function encodeMergeParts(batch: BatchView, shardCount: number, shardOf: ShardOf, exemptPrefix = ''): MergePart[] {
  const one = shardCount === 1;
  const shares = Array.from({ length: shardCount }, () => new ShardShare());
  const at = (name: string): ShardShare => {
    const sh = shares[one ? 0 : shardOf(name)];
    if (sh === undefined) throw new RangeError(`shardOf(${JSON.stringify(name)}) gave ${shardOf(name)}, not a shard of ${shardCount}`);
    return sh;
  };

  const counters = batch.counterNames;
  for (let i = 0; i < counters.length; i++) {
    const name = counters[i]!;
    const sh = at(name);
    if (exemptPrefix.length > 0 && name.startsWith(exemptPrefix)) {
      sh.own.counter(name, batch.counterValue(i));
    } else {
      sh.part.counter(name, batch.counterValue(i));
      sh.named(name);
    }
    sh.samples += batch.counterSampleCount(i);
  }

  const timers = batch.timerNames;
  const samples = batch.timerSampleArray;
  for (let i = 0; i < timers.length; i++) {
    const sh = at(timers[i]!);
    const from = batch.timerOffset(i);
    const n = batch.timerLength(i);
    sh.part.timer(timers[i]!, batch.timerCount(i), samples, from, from + n);
    sh.named(timers[i]!);
    sh.samples += n;
  }

  const gauges = batch.gaugeNames;
  for (let i = 0; i < gauges.length; i++) {
    const sh = at(gauges[i]!);
    sh.gauges.push(gauges[i]!, batch.gaugeIsDelta(i) ? 'd' : 's', String(batch.gaugeValue(i)));
    sh.samples += batch.gaugeSampleCount(i);
  }

  for (const [name, entry] of batch.sets) {
    const sh = at(name);
    sh.part.set(name, entry.members, entry.members.size);
    sh.named(name);
    sh.samples += entry.samples;
  }

  for (const line of batch.passthroughLines) {
    const sh = at(line);
    sh.passthrough.push(line);
    sh.samples++;
  }

  const out: MergePart[] = [];
  for (let s = 0; s < shardCount; s++) {
    const sh = shares[s]!;
    // A single shard's part exists even for an empty batch (encodeMerge).
    if (sh.used || one) out.push({ shard: s, args: sh.args(), samples: sh.samples });
  }
  return out;
}

/** What encodeMergeParts reads of a Batch. */
export type BatchView = Pick<Batch, 'counterNames' | 'counterValue' | 'counterSampleCount' | 'timerNames' | 'timerSampleArray'
  | 'timerOffset' | 'timerLength' | 'timerCount' | 'gaugeNames' | 'gaugeValue' | 'gaugeIsDelta' | 'gaugeSampleCount' | 'sets'
  | 'passthroughLines'>;
