/**
 * Wires the HTTP server to a running daemon's parts (composition for
 * src/http/): the Prometheus registry, the self-history ring, the Redis
 * history reader, the routes, and the server itself.
 */
import { readFileSync } from 'node:fs';
import type { HttpConfig } from '../config/types.js';
import type { HealthFacts } from '../observability/health.js';
import type { Logger } from '../observability/logger.js';
import type { SelfStats } from '../observability/self-stats.js';
import { RecentPeriods, RecentShards } from '../store/recent.js';
import type { Store } from '../store/store.js';
import { type FlushTimes, type IngestTotals, PromMetrics } from './metrics.js';
import { buildRoutes } from './routes.js';
import { SelfHistory } from './self-history.js';
import { HttpServer } from './server.js';

export interface HttpParts {
  readonly self: SelfStats;
  readonly ingest: IngestTotals;
  readonly flush: FlushTimes;
  readonly health: HealthFacts;
  readonly store: Store;
}

export interface RunningHttp {
  readonly port: number;
  readonly server: HttpServer;
  stop(): Promise<void>;
}

function version(): string {
  const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string };
  return pkg.version;
}

export async function startHttp(cfg: HttpConfig, parts: HttpParts, log: Logger): Promise<RunningHttp> {
  const { self, ingest, flush, health, store } = parts;
  let server: HttpServer | null = null;
  const metrics = new PromMetrics({ self, ingest, flush, http: () => server?.counters ?? { requests: 0, refusedBusy: 0, errors: 0 } });
  const history = new SelfHistory({
    totals: () => ({
      received: ingest.metricsReceived + self.zmqItemsReceived,
      badLines: ingest.badLines + self.zmqBadItems,
      dropped: self.oversizedPackets + self.zmqOversized + self.batchesDropped + self.outboxDropped + self.namesDropped,
      udpKernelDrops: self.udpKernelDrops,
    }),
    flushTimeMs: () => flush.lastFlushMs,
    timestampLagS: () => flush.lastLagS,
    report: () => health.report(),
  });
  const routes = buildRoutes({
    version: version(),
    startedAtMs: Date.now(),
    health,
    metrics,
    history,
    recent: new RecentShards(store.shards.map((s) => new RecentPeriods(s.redis, s.keys))),
  });
  server = new HttpServer(cfg, routes, log);
  const port = await server.start();
  await history.start();
  const running = server;
  return {
    port,
    server: running,
    async stop() {
      history.stop();
      await running.stop();
    },
  };
}
