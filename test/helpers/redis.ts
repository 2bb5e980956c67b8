/** Each test gets its own key prefix on the real Redis and removes its keys. */
import { randomBytes } from 'node:crypto';
import { Redis } from 'ioredis';
import { Keys } from '../../src/store/keys.js';
import { ShardMap } from '../../src/store/shards.js';

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

/**
 * Every shard's Keys under prefix, in shard order, and the shard of a name: from the number of shards the state
 * records (Keys.shardsRecord; none recorded yet, as before a tallyd started on it: one shard).
 */
export async function shardKeys(r: Redis, prefix: string): Promise<{ keys: Keys[]; of: (name: string) => number }> {
  const map = new ShardMap(Number((await r.get(Keys.shardsRecord(prefix))) ?? 1));
  return { keys: map.tags.map((tag) => new Keys(prefix, tag)), of: (name) => map.of(name) };
}

/** A counter's sum over the periods not closed yet (in the name's shard): what was merged into Redis and not yet published. */
export async function openCounter(prefix: string, name: string, url = REDIS_URL): Promise<number> {
  const r = new Redis(url, { maxRetriesPerRequest: 1 });
  try {
    const shards = await shardKeys(r, prefix);
    const k = shards.keys[shards.of(name)] as Keys;
    let sum = 0;
    for (const p of await r.zrange(k.open, 0, -1)) sum += Number((await r.hget(k.period(Number(p), 'counters'), name)) ?? 0);
    return sum;
  } finally {
    r.disconnect();
  }
}

/**
 * A counter's total so far: what was published (published(), e.g. the sum of
 * its stats_counts lines at a Carbon listener) plus what waits in the open
 * periods. A period closed between the two reads is briefly in neither, so
 * wait on this, never assert it once.
 */
export async function counterSoFar(prefix: string, name: string, published: () => number): Promise<number> {
  return published() + (await openCounter(prefix, name));
}
