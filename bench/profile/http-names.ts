/**
 * The HTTP API's cost on the ingest thread: a tallyd in this process (HTTP
 * on, flushing idle) with one kept period of N names in Redis
 * (store/recent.ts), then rounds of 8 concurrent /api/names requests (half
 * match nothing: a full HSCAN of the period), then 8 concurrent /metrics.
 * Prints, per round, the wall time and the main thread's event-loop delay
 * (monitorEventLoopDelay, 1 ms resolution): what a datagram waiting to be
 * read would have waited. Needs the Redis at REDIS_URL.
 *
 *   node --import tsx bench/profile/http-names.ts [names=100000] [rounds=3]
 */
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { RecentPeriods } from '../../src/store/recent.js';
import { cleanup, testPrefix } from '../../test/helpers/redis.js';
import { startDaemon, testConfig } from '../../test/helpers/tallyd.js';

const names = Number(process.argv[2] ?? 100_000);
const rounds = Number(process.argv[3] ?? 3);

async function measure(what: string, run: () => Promise<unknown>): Promise<void> {
  const h = monitorEventLoopDelay({ resolution: 1 });
  h.enable();
  const t0 = performance.now();
  await run();
  const wallMs = Math.round(performance.now() - t0);
  h.disable();
  const ms = (ns: number): number => Math.round(ns / 1e5) / 10;
  console.log(JSON.stringify({ what, wallMs, loopDelayMeanMs: ms(h.mean), loopDelayP99Ms: ms(h.percentile(99)), loopDelayMaxMs: ms(h.max) }));
}

const prefix = testPrefix('bench-http');
const daemon = await startDaemon(testConfig(prefix, null, { http: { port: 0 }, flushInterval: 3_600_000, batchInterval: 1000 }));
try {
  const store = daemon.store;
  const port = daemon.ports.http;
  if (!store || port === null) throw new Error('tallyd did not start its store or HTTP server');
  const n: string[] = [];
  const v: string[] = [];
  let bytes = 0;
  for (let i = 0; i < names; i++) {
    n.push(`stats.timers.app${i % 50}.request_${i}.upper_90`);
    v.push(String(i));
    bytes += (n[i] as string).length + (v[i] as string).length + 13;
  }
  const t0 = performance.now();
  await new RecentPeriods(store.redis, store.keys).append(Date.now() - (Date.now() % 1000), n, v, bytes, { maxBytes: 1e12, maxPeriods: 10, ttlMs: 3_600_000 });
  console.log(JSON.stringify({ names, lineBytes: bytes, appendMs: Math.round(performance.now() - t0) }));
  const get = (path: string): Promise<string> => fetch(`http://127.0.0.1:${port}${path}`).then((r) => r.text());
  for (let r = 0; r < rounds; r++) {
    await measure(`round ${r}: 8 concurrent /api/names (4 without a match)`, () =>
      Promise.all(Array.from({ length: 8 }, (_, i) => get(i % 2 ? '/api/names?q=zzz' : '/api/names?q=request_1&limit=500'))));
  }
  for (let r = 0; r < rounds; r++) {
    await measure(`round ${r}: 8 concurrent /metrics`, () => Promise.all(Array.from({ length: 8 }, () => get('/metrics'))));
    await measure(`round ${r}: 1 /metrics`, () => get('/metrics'));
  }
} finally {
  await daemon.stop();
  await cleanup(prefix);
}
