/** Each test gets its own key prefix on the real Redis and removes its keys. */
import { randomBytes } from 'node:crypto';
import { Redis } from 'ioredis';
import { Keys } from '../../src/store/keys.js';
import { ShardMap } from '../../src/store/shards.js';
import type { RedisClient } from '../../src/store/client.js';
import { foldParts } from '../../src/flush/fold-parts.js';

export const REDIS_URL = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';

export function testPrefix(name: string): string {
  return `tallyd-test:${name}:${randomBytes(4).toString('hex')}:`;
}

export async function cleanup(prefix: string, url = REDIS_URL): Promise<void> {
  const r = new Redis(url, { lazyConnect: true, maxRetriesPerRequest: 1 });
  try {
    await r.connect();
    let cursor = '0';
    do {
      const [next, keys] = await r.scan(cursor, 'MATCH', `${prefix}*`, 'COUNT', 1000);
      cursor = next;
      if (keys.length > 0) await r.del(...keys);
    } while (cursor !== '0');
  } finally {
    r.disconnect();
  }
}

export function client(url = REDIS_URL): Redis {
  return new Redis(url, { maxRetriesPerRequest: 1 });
}

/** Runs fn on a fresh connection to url (or on the given client, left open), then disconnects what it opened. */
export async function withClient<T>(on: string | RedisClient, fn: (r: RedisClient) => Promise<T>): Promise<T> {
  if (typeof on !== 'string') return fn(on);
  const r = client(on);
  try {
    return await fn(r);
  } finally {
    r.disconnect();
  }
}

/**
 * The number of shards the prefix's state was created with (`<prefix>v2:shards`, Keys.shardsRecord), read as a
 * tallyd reads it; null when no tallyd has started on the prefix yet.
 */
export async function recordedShards(r: RedisClient, prefix: string): Promise<number | null> {
  const v = await r.get(Keys.shardsRecord(prefix));
  if (v === null) return null;
  const n = Number(v);
  if (!Number.isInteger(n) || n < 1) throw new Error(`${Keys.shardsRecord(prefix)} holds ${JSON.stringify(v)}, not a shard count`);
  return n;
}

/** The shard map of the prefix's recorded shard count (null before a tallyd started on it). */
export async function recordedShardMap(r: RedisClient, prefix: string): Promise<ShardMap | null> {
  const n = await recordedShards(r, prefix);
  return n === null ? null : new ShardMap(n);
}

/** Every shard's Keys of the prefix under map (shard i at index i). */
export function shardKeys(prefix: string, map: ShardMap): Keys[] {
  return map.tags.map((tag) => new Keys(prefix, tag));
}

/** The Keys of the shard that holds name (as stored: with its tags) under map. */
export function keysOf(prefix: string, map: ShardMap, name: string): Keys {
  return new Keys(prefix, map.tags[map.of(name)]);
}

/**
 * A counter's sum over the periods not closed yet: what was merged into Redis and not yet published. Read from the
 * name's shard (the recorded shard count decides which); 0 before any tallyd recorded one.
 */
export async function openCounter(prefix: string, name: string, on: string | RedisClient = REDIS_URL): Promise<number> {
  return withClient(on, async (r) => {
    const map = await recordedShardMap(r, prefix);
    if (map === null) return 0;
    const k = keysOf(prefix, map, name);
    let sum = 0;
    for (const p of await r.zrange(k.open, 0, -1)) {
      // An open period's counters are in its packed parts (layout 3): folded as its leader will.
      sum += foldParts(await r.getBuffer(k.period(Number(p), 'parts'))).counters.get(name) ?? 0;
    }
    return sum;
  });
}

/**
 * A counter's total so far: what was published (published(), e.g. the sum of
 * its stats_counts lines at a Carbon listener) plus what waits in the open
 * periods of its shard. A period closed between the two reads is briefly in
 * neither, so wait on this, never assert it once.
 */
export async function counterSoFar(prefix: string, name: string, published: () => number, on: string | RedisClient = REDIS_URL): Promise<number> {
  return published() + (await openCounter(prefix, name, on));
}
