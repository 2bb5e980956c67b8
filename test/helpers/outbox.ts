/**
 * Test access to the outbox streams: their entries and their text, read
 * straight from Redis. Each shard has its own outbox (Keys.outbox under the
 * shard's tag); outboxEntries reads one store's, the others every shard's.
 */
import type { Config } from '../../src/config/types.js';
import type { PeriodSink } from '../../src/flush/period-sink.js';
import { SelfStats } from '../../src/observability/self-stats.js';
import { GraphiteSink } from '../../src/sink/graphite/graphite-sink.js';
import type { RedisClient } from '../../src/store/client.js';
import type { Store } from '../../src/store/store.js';
import { recordedShardMap, REDIS_URL, shardKeys, withClient } from './redis.js';

export interface RawEntry {
  id: string;
  d: string;
  n: number;
  b: number;
}

async function readOutbox(r: RedisClient, key: string): Promise<RawEntry[]> {
  const rows = await r.xrange(key, '-', '+');
  return rows.map(([id, f]) => {
    const m = new Map<string, string>();
    for (let i = 0; i + 1 < f.length; i += 2) m.set(f[i] as string, f[i + 1] as string);
    return { id, d: m.get('d') ?? '', n: Number(m.get('n')), b: Number(m.get('b')) };
  });
}

/** The entries of this store's own shard's outbox (shard 0 for the Store that Store.open returns). */
export async function outboxEntries(store: Store): Promise<RawEntry[]> {
  return readOutbox(store.redis, store.keys.outbox);
}

export async function outboxText(store: Store): Promise<string> {
  return (await outboxEntries(store)).map((e) => e.d).join('');
}

/** Every shard's outbox entries, shard by shard (shard i's at index i). */
export async function shardOutboxEntries(store: Store): Promise<RawEntry[][]> {
  return Promise.all(store.shards.map((s) => outboxEntries(s)));
}

/** The text of every shard's outbox, shard 0 first (each shard's entries in their order). */
export async function allOutboxText(store: Store): Promise<string> {
  return (await shardOutboxEntries(store)).flat().map((e) => e.d).join('');
}

/**
 * The text of every shard's outbox under a prefix, by its recorded shard count (no Store needed: for tests that run
 * tallyd as a child or a Daemon); '' before a tallyd recorded the count.
 */
export async function prefixOutboxText(prefix: string, on: string | RedisClient = REDIS_URL): Promise<string> {
  return withClient(on, async (r) => {
    const map = await recordedShardMap(r, prefix);
    if (map === null) return '';
    let text = '';
    for (const k of shardKeys(prefix, map)) text += (await readOutbox(r, k.outbox)).map((e) => e.d).join('');
    return text;
  });
}

/** The graphite sink's encoding, with no delivery: what a Flusher commits to the outbox. */
export function graphiteOnly(config: Config, self = new SelfStats()): PeriodSink[] {
  return [new GraphiteSink(config, self, { start: () => {}, kick: () => {}, stop: () => Promise.resolve() })];
}
