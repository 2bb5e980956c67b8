/**
 * One flush of N distinct counter names, timed step by step, for CPU
 * profiles of the flush path (`node --cpu-prof --import tsx
 * bench/micro/flush-profile.ts 100000`). It fills a period straight into Redis
 * (packed parts appended under a fresh key prefix, the names already known as in
 * steady state, or new with `--new`), and lets a Flusher close and process it
 * and prints where the time went. No Carbon: the outbox is left in Redis and
 * deleted with the prefix.
 *
 *   node --import tsx bench/micro/flush-profile.ts <names> [--new] [--runs N]
 */
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { loadConfig } from '../../src/config/load.js';
import { Flusher } from '../../src/flush/flusher.js';
import { createLogger } from '../../src/observability/logger.js';
import { SelfStats } from '../../src/observability/self-stats.js';
import { GraphiteSink } from '../../src/sink/graphite/graphite-sink.js';
import { Store } from '../../src/store/store.js';
import { Batch } from '../../src/aggregate/batch.js';
import { encodeMerge } from '../../src/aggregate/merge-args.js';
import { commandSplit, commandStats, cpuOf, dropPrefix } from '../lib/redis-stats.js';

const args = process.argv.slice(2);
const names = Number(args.find((a) => /^\d+$/.test(a)) ?? 100_000);
const allNew = args.includes('--new');
const runsAt = args.indexOf('--runs');
const runs = runsAt >= 0 ? Number(args[runsAt + 1]) : 3;
const url = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';

async function fill(store: Store, boundaryMs: number, n: number, known: boolean): Promise<void> {
  const k = store.keys;
  const STEP = 10_000;
  for (let i = 0; i < n; i += STEP) {
    // The period's packed parts as merges append them (one part a batch of STEP names).
    const b = new Batch();
    const names: string[] = [];
    for (let j = i; j < Math.min(n, i + STEP); j++) {
      b.counter(`scale.${j}`, (j % 7) + 1, 1);
      names.push(`scale.${j}`, '1');
    }
    const p = store.redis.pipeline();
    p.append(k.period(boundaryMs, 'parts'), encodeMerge(b)[0]!).zadd(k.open, boundaryMs, boundaryMs);
    if (known) p.hset(k.known('counters'), ...names);
    await p.exec();
  }
}

async function main(): Promise<void> {
  const prefix = `flushprof:${process.pid}:`;
  // One shard: one Flusher is profiled (with several, shard 0 would wait for the others' commits, flush/fleet-stats.ts).
  const { config } = loadConfig({
    file: null,
    env: {},
    overrides: { graphiteHost: '127.0.0.1', flushInterval: 2000, redis: { url, keyPrefix: prefix, shards: 1 }, log: { level: 'warn' } },
  });
  const log = createLogger('warn');
  const store = await Store.open(config.redis, log);
  try {
    for (let r = 0; r < runs; r++) {
      // The last period that is over, filled as merges would have; `closed` forgotten so the flusher closes it again.
      const boundary = Math.floor(Date.now() / 2000) * 2000;
      await store.redis.del(store.keys.closed);
      await fill(store, boundary, names, !allNew || r > 0);
      const self = new SelfStats();
      let done!: () => void;
      const committed = new Promise<void>((resolve) => (done = resolve));
      // The graphite sink's encoding into outbox chunks, with no delivery.
      const sinks = [new GraphiteSink(config, self, { start: () => {}, kick: () => {}, stop: () => Promise.resolve() })];
      const flusher = new Flusher(store, config, self, log, () => done(), undefined, sinks);
      if (!(await store.tryAcquireLease(flusher.token, config.leaseTtl))) throw new Error('lease busy');
      const t1 = performance.now();
      const before = process.memoryUsage().rss;
      const redisCpu0 = cpuOf(await store.redis.info('cpu'));
      const stats0 = commandStats(await store.redis.info('commandstats'));
      const delay = monitorEventLoopDelay({ resolution: 5 });
      delay.enable();
      await flusher.start();
      await committed;
      const t2 = performance.now();
      delay.disable();
      const redisCpu = cpuOf(await store.redis.info('cpu')) - redisCpu0;
      const stats = commandSplit(stats0, commandStats(await store.redis.info('commandstats')), names);
      await flusher.stop();
      console.log(
        `run ${r + 1}: ${names} names${allNew && r === 0 ? ' (new)' : ''}: ` +
          `close+read+compute+commit ${(t2 - t1).toFixed(0)} ms (${Object.entries(flusher.lastStages ?? {}).map(([k, v]) => `${k} ${v}`).join(', ')}), longest event-loop stall ${(delay.max / 1e6).toFixed(0)} ms, ` +
          `Redis CPU ${(redisCpu * 1000).toFixed(0)} ms (${((redisCpu * 1e6) / names).toFixed(2)} µs/name: ${stats.join(', ')}), rss ${(before / 1e6).toFixed(0)} -> ${(process.memoryUsage().rss / 1e6).toFixed(0)} MB`,
      );
      await store.redis.del(store.keys.outbox, store.keys.outboxBytes);
    }
  } finally {
    await dropPrefix(store.redis, prefix);
    await store.quit();
  }
}



main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
