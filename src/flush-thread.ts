/**
 * The flush side of a tallyd process, run in a worker thread so that reading
 * a big period, computing it and encoding its lines never stalls ingest on
 * the main thread (bench/README.md, "Scale curves"). It owns its own
 * Redis connection, a Flusher per shard (lease, close, compute, commit; the
 * shards it leads are chosen by rendezvous hashing, flush/shard-leases.ts)
 * with its sinks, and reports its counters to the main thread as deltas since
 * its last report (a restarted thread starts from zero without taking the
 * process's totals back).
 */
import { randomUUID } from 'node:crypto';
import { readlinkSync } from 'node:fs';
import os from 'node:os';
import { parentPort, workerData } from 'node:worker_threads';
import type { Config } from './config/types.js';
import { createLogger, type Logger } from './observability/logger.js';
import { SelfStats } from './observability/self-stats.js';
import { buildSinks } from './sink/build-sinks.js';
import { Store } from './store/store.js';
import { Flusher } from './flush/flusher.js';
import { ShardLeases } from './flush/shard-leases.js';
import { MIRRORED_STATS, type FlushThreadMessage, type FlushThreadReport } from './flush/flush-host.js';

const REPORT_EVERY_MS = 500;

/**
 * Lowers this thread's priority (flushNice). On Linux setpriority() on a
 * thread id applies to that thread alone, and /proc/thread-self names the
 * calling thread's id; elsewhere nothing changes (logged at debug). Raising
 * niceness needs no privileges.
 */
function niceThisThread(nice: number, log: Logger): void {
  if (nice === 0) return;
  try {
    const tid = Number(readlinkSync('/proc/thread-self').split('/').pop());
    if (!Number.isInteger(tid) || tid <= 0) throw new Error('no thread id in /proc/thread-self');
    os.setPriority(tid, Math.max(os.getPriority(tid), nice));
    log.debug({ tid, nice: os.getPriority(tid) }, 'flush thread niceness set');
  } catch (err) {
    log.debug({ err: (err as Error).message }, 'could not lower the flush thread priority; it runs at the process priority');
  }
}

async function run(port: NonNullable<typeof parentPort>, config: Config, logBindings: Record<string, unknown>): Promise<void> {
  const base = createLogger(config.log).child(logBindings);
  const log = base.child({ component: 'flusher' });
  niceThisThread(config.flushNice, log);
  const self = new SelfStats();
  const store = await Store.open(config.redis, base.child({ component: 'flush-store' }), undefined, () => self.redisTimeouts++);
  // One token for the thread: every shard's lease it holds names it, and it ranks shards by it (shard-leases.ts).
  const token = randomUUID();
  const sharded = store.shards.length > 1;
  const leases = new ShardLeases(store, token, config.leaseTtl, base.child({ component: 'shard-leases' }));
  // A Flusher per shard, each with its own sinks: the CarbonSink drains its shard's outbox under its shard's lease
  // (a connection per delivery, so per led shard), the HistorySink keeps its shard's periods.
  const shards = store.shards.map((shardStore) => {
    const shardLog = sharded ? log.child({ shard: shardStore.shard }) : log;
    const sinks = buildSinks(config, shardStore, () => (flusher.isLeader ? flusher.token : null), self, sharded ? base.child({ shard: shardStore.shard }) : base);
    const flusher: Flusher = new Flusher(shardStore, config, self, shardLog, () => report(), undefined, sinks, { token, ...(sharded ? { gate: leases } : {}) });
    return { flusher, sinks };
  });
  const flushers = shards.map((s) => s.flusher);
  const allSinks = shards.flatMap((s) => s.sinks);
  const reported = Object.fromEntries(MIRRORED_STATS.map((k) => [k, 0])) as Record<(typeof MIRRORED_STATS)[number], number>;
  let seenCommitted = 0;
  let lastLagS: number | null = null;
  let lastFlushMs: number | null = null;
  const report = (): void => {
    const committed = flushers.reduce((n, f) => n + f.periodsCommitted, 0);
    const lastCommittedTs = Math.max(0, ...flushers.map((f) => f.lastCommittedTs));
    // Called at once after each commit (onCommitted), so this is the time from the boundary to the commit of the
    // newest period committed by any shard this thread leads; the stages are that shard's.
    if (committed !== seenCommitted) {
      seenCommitted = committed;
      lastLagS = Math.round(Date.now() / 1000) - lastCommittedTs;
      const newest = flushers.find((f) => f.lastCommittedTs === lastCommittedTs && f.lastStages !== null);
      if (newest?.lastStages) lastFlushMs = Object.values(newest.lastStages).reduce((a, b) => a + b, 0);
    }
    const deltas = {} as Record<(typeof MIRRORED_STATS)[number], number>;
    for (const k of MIRRORED_STATS) {
      deltas[k] = self[k] - reported[k];
      reported[k] = self[k];
    }
    const led = flushers.filter((f) => f.isLeader).map((f) => f.shard);
    const msg: FlushThreadReport = {
      type: 'report',
      leader: led.length > 0,
      shardsLed: led,
      periodsCommitted: committed,
      lastCommittedTs,
      lastFlushMs,
      lastLagS,
      deltas,
      graphite: { ...self.graphite },
    };
    port.postMessage(msg);
  };
  await leases.start();
  // The token names this thread in every lease it holds and in the flushers hash: say it once at start, so an operator
  // (or a test) can tell which process holds a shard even before it leads one.
  log.info({ token, shards: store.shards.length, preferred: sharded ? leases.preferred(store.shards.length) : [0] }, 'flush thread joined the flushers');
  for (const sink of allSinks) sink.start();
  await Promise.all(flushers.map((f) => f.start()));
  const ticker = setInterval(report, REPORT_EVERY_MS);
  port.on('message', (m: FlushThreadMessage) => {
    if (m.type !== 'stop') return;
    clearInterval(ticker);
    void (async () => {
      // A clean stop: close and commit what is due (on every shard led), drain the outboxes while still holding the
      // leases, then give the leases up and leave the flushers hash (the others rank without this process).
      const deadline = Date.now() + m.drainMs;
      await Promise.all(flushers.map((f) => f.closeForStop(Date.now() + m.drainMs / 2)));
      await Promise.all(allSinks.map((sink) => sink.stop(Math.max(0, deadline - Date.now()))));
      await Promise.all(flushers.map((f) => f.stop()));
      await leases.stop();
      report();
      await store.quit();
      port.postMessage({ type: 'stopped' } satisfies FlushThreadReport);
      port.close();
    })();
  });
  port.postMessage({ type: 'ready' } satisfies FlushThreadReport);
}

if (parentPort) {
  const port = parentPort;
  const { config, logBindings } = workerData as { config: Config; logBindings: Record<string, unknown> };
  run(port, config, logBindings).catch((err: unknown) => {
    port.postMessage({ type: 'failed', error: (err as Error).message } satisfies FlushThreadReport);
  });
}
