/**
 * The prefix's recorded number of shards (`<prefix>v<LAYOUT>:shards`, no
 * hash tag): written at the first start, checked at every start (Store.open)
 * and shown by `tallyd --check`. A name's shard, hence its keys, depends on
 * the number, so it cannot change under a running state.
 */
import type { Cluster, Redis } from 'ioredis';
import { StoreError } from './errors.js';
import { Keys } from './keys.js';

/** What the prefix holds: the recorded count; or, with no record, whether a state from before shards (`{0}` keys) is there, which counts as one. */
export interface ShardsRecord {
  readonly key: string;
  /** The recorded number, 1 for a state from before shards, null when none yet. */
  readonly count: number | null;
  /** The count is 1 because of keys under `{0}` without a record (tallyd before shards). */
  readonly legacy: boolean;
}

/** Whether keys of a state from before shards (hash tag `{0}`, no record) are there. */
async function legacyState(redis: Redis | Cluster, keyPrefix: string): Promise<boolean> {
  const legacy = new Keys(keyPrefix, '0');
  return (await redis.exists(legacy.lastCommit, legacy.open, legacy.pending, legacy.gauges, legacy.outbox, legacy.known('counters'))) > 0;
}

/** Reads the record (read-only: `--check`). */
export async function readShardsRecord(redis: Redis | Cluster, keyPrefix: string): Promise<ShardsRecord> {
  const key = Keys.shardsRecord(keyPrefix);
  const recorded = await redis.get(key);
  if (recorded !== null) return { key, count: Number(recorded), legacy: false };
  return (await legacyState(redis, keyPrefix)) ? { key, count: 1, legacy: true } : { key, count: null, legacy: false };
}

/** The ESHARDS message: the configured and recorded numbers, the key, and what to do. */
export function shardsMismatchMessage(keyPrefix: string, configured: number, recorded: number): string {
  return `redis.shards is ${configured}, but the state under redis.keyPrefix "${keyPrefix}" was created with ${recorded} `
    + `shard(s) (${Keys.shardsRecord(keyPrefix)}): set redis.shards: ${recorded}, or use another keyPrefix for a new state (names hash to shards by their number, `
    + 'so it cannot change under a running state)';
}

/**
 * Records the prefix's number of shards at its first start and refuses another (StoreError ESHARDS). A state from
 * tallyd before shards (keys under `{0}`, no record) counts as one. Returns count.
 */
export async function checkShards(redis: Redis | Cluster, keyPrefix: string, count: number): Promise<number> {
  const record = Keys.shardsRecord(keyPrefix);
  let recorded = await redis.get(record);
  if (recorded === null) {
    const old = count !== 1 && (await legacyState(redis, keyPrefix));
    await redis.set(record, String(old ? 1 : count), 'NX');
    recorded = await redis.get(record);
  }
  if (recorded !== null && Number(recorded) !== count) {
    throw new StoreError('ESHARDS', shardsMismatchMessage(keyPrefix, count, Number(recorded)));
  }
  return count;
}
