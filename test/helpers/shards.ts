/**
 * Writing samples into the shards their names belong to, through the real
 * merge script (mergeBatch-11 via Store.merge), one batch per shard: what a
 * batcher that splits by shard does. For tests of the readers (console,
 * health, HTTP) with names spread over several shards.
 */
import { randomBytes } from 'node:crypto';
import { Batch } from '../../src/aggregate/batch.js';
import { encodeMerge } from '../../src/aggregate/merge-args.js';
import { nextBoundary } from '../../src/clock.js';
import type { Store } from '../../src/store/store.js';

export type TestSample =
  | { c: string; v: number }
  | { g: string; v: number; delta?: boolean }
  | { ms: string; v: number }
  | { s: string; member: string };

function nameOf(x: TestSample): string {
  if ('c' in x) return x.c;
  if ('g' in x) return x.g;
  if ('ms' in x) return x.ms;
  return x.s;
}

/**
 * Merges samples into the period boundaryMs (default: the current period of flushIntervalMs), each into its name's
 * shard (store.storeFor). Returns the shards written to. The member's watermark is a day ahead, so no leader waits
 * for this writer.
 */
export async function mergeIntoShards(store: Store, samples: readonly TestSample[], boundaryMs = nextBoundary(Date.now(), 1000)): Promise<Set<number>> {
  const batches = new Map<number, Batch>();
  for (const x of samples) {
    const shard = store.shardOf(nameOf(x));
    let b = batches.get(shard);
    if (b === undefined) batches.set(shard, (b = new Batch()));
    if ('c' in x) b.counter(x.c, x.v, 1);
    else if ('g' in x) b.gauge(x.g, x.v, x.delta ?? false);
    else if ('ms' in x) b.timer(x.ms, x.v, 1);
    else b.set(x.s, x.member);
  }
  const tag = randomBytes(4).toString('hex');
  await Promise.all([...batches].map(async ([shard, batch]) => {
    const id = `test:${tag}:${shard}`;
    const res = await (store.shards[shard] as Store).merge(id, boundaryMs, 'test-writer', boundaryMs + 86_400_000, encodeMerge(batch));
    if (res.status !== 'merged') throw new Error(`merge into shard ${shard}: ${JSON.stringify(res)}`);
  }));
  return new Set(batches.keys());
}

/** Names (prefix + i) until they cover at least `shards` distinct shards of store, with their shards. */
export function namesOverShards(store: Store, prefix: string, shards: number): Array<{ name: string; shard: number }> {
  const out: Array<{ name: string; shard: number }> = [];
  const seen = new Set<number>();
  for (let i = 0; seen.size < Math.min(shards, store.shards.length); i++) {
    const name = `${prefix}${i}`;
    const shard = store.shardOf(name);
    out.push({ name, shard });
    seen.add(shard);
  }
  return out;
}

/**
 * Closes and commits period boundaryMs of one shard through the real scripts (acquireLease-1, closePeriod-8,
 * commitPeriod-14), as that shard's leader would, with the given outbox chunks ('\n'-terminated Graphite lines);
 * the lease is released after. For tests of what readers see of committed periods and outboxes.
 */
export async function commitInShard(shardStore: Store, boundaryMs: number, chunks: readonly string[]): Promise<void> {
  const token = `test-leader:${randomBytes(4).toString('hex')}`;
  if ((await shardStore.tryAcquireLease(token, 60_000)) === 0) throw new Error(`shard ${shardStore.shard}'s lease is held by another process`);
  try {
    const closed = await shardStore.closePeriod(token, boundaryMs, 60_000, 0, boundaryMs + 1);
    if (closed.status !== 'closed') throw new Error(`close of ${boundaryMs} on shard ${shardStore.shard}: ${JSON.stringify(closed)}`);
    const res = await shardStore.commit(token, boundaryMs, { chunks: [...chunks], gaugeTtl: [], gaugeDeletes: [], outboxMaxBytes: 1e9 });
    if (res.status !== 1) throw new Error(`commit of ${boundaryMs} on shard ${shardStore.shard}: ${JSON.stringify(res)}`);
  } finally {
    await shardStore.releaseLease(token);
  }
}
