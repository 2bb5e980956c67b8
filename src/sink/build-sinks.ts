/**
 * The sinks of a flush thread, from the config's backends: graphite (when
 * graphiteHost is set; plaintext to graphitePort or pickle to
 * graphitePicklePort) and console.
 */
import type { Config } from '../config/types.js';
import type { PeriodSink } from '../flush/period-sink.js';
import type { Logger } from '../observability/logger.js';
import type { SelfStats } from '../observability/self-stats.js';
import type { Store } from '../store/store.js';
import { ConsoleSink } from './console/console-sink.js';
import { CarbonSink } from './graphite/carbon.js';
import { GraphiteSink } from './graphite/graphite-sink.js';
import { HistorySink } from './history/history-sink.js';
import { RecentPeriods } from '../store/recent.js';

export function buildSinks(config: Config, store: Store, leaderToken: () => string | null, self: SelfStats, log: Logger): PeriodSink[] {
  const sinks: PeriodSink[] = [];
  if (config.backends.includes('graphite') && config.graphiteHost) {
    const pickle = config.graphiteProtocol === 'pickle';
    const target = { host: config.graphiteHost, port: pickle ? config.graphitePicklePort : config.graphitePort };
    const carbon = new CarbonSink(target, store, leaderToken, self, log.child({ component: 'carbon' }), {
      protocol: config.graphiteProtocol,
      writeTimeoutMs: config.carbonWriteTimeout,
    });
    sinks.push(new GraphiteSink(config, self, carbon));
  }
  if (config.backends.includes('console')) sinks.push(new ConsoleSink(config));
  // The HTTP API's recent periods (store/recent.ts): kept only when the HTTP server is on.
  if (config.http) sinks.push(new HistorySink(config, new RecentPeriods(store.redis, store.keys), historyBounds(config), self, log.child({ component: 'history' })));
  return sinks;
}

/**
 * One shard's Redis history bounds from the config (a HistorySink runs per shard): historyMaxBytes is the whole
 * history's, so each shard keeps its share (names spread evenly over the shards); hashes expire after twice the
 * periods' span (at least an hour).
 */
export function historyBounds(config: Config): { maxBytes: number; maxPeriods: number; ttlMs: number } {
  const http = config.http;
  const maxPeriods = http?.historyPeriods ?? 1;
  const maxBytes = Math.ceil((http?.historyMaxBytes ?? 0) / Math.max(1, config.redis.shards));
  return { maxBytes, maxPeriods, ttlMs: Math.max(3_600_000, 2 * maxPeriods * config.flushInterval) };
}
