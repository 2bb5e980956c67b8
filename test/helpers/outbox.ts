/** Test access to the outbox stream: its entries and their text, read straight from Redis. */
import type { Config } from '../../src/config/types.js';
import type { PeriodSink } from '../../src/flush/period-sink.js';
import { SelfStats } from '../../src/observability/self-stats.js';
import { GraphiteSink } from '../../src/sink/graphite/graphite-sink.js';
import type { Store } from '../../src/store/store.js';

export interface RawEntry {
  id: string;
  d: string;
  n: number;
  b: number;
}

export async function outboxEntries(store: Store): Promise<RawEntry[]> {
  const rows = await store.redis.xrange(store.keys.outbox, '-', '+');
  return rows.map(([id, f]) => {
    const m = new Map<string, string>();
    for (let i = 0; i + 1 < f.length; i += 2) m.set(f[i] as string, f[i + 1] as string);
    return { id, d: m.get('d') ?? '', n: Number(m.get('n')), b: Number(m.get('b')) };
  });
}

export async function outboxText(store: Store): Promise<string> {
  return (await outboxEntries(store)).map((e) => e.d).join('');
}

/** The graphite sink's encoding, with no delivery: what a Flusher commits to the outbox. */
export function graphiteOnly(config: Config, self = new SelfStats()): PeriodSink[] {
  return [new GraphiteSink(config, self, { start: () => {}, kick: () => {}, stop: () => Promise.resolve() })];
}
