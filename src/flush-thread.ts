/**
 * The flush side of a tallyd process, run in a worker thread so that reading
 * a big period, computing it and encoding its lines never stalls ingest on
 * the main thread (bench/README.md, "Scale curves"). It owns its own
 * Redis connection, the Flusher (lease, close, compute, commit) and the
 * Carbon sink, and reports its counters to the main thread as deltas since
 * its last report (a restarted thread starts from zero without taking the
 * process's totals back).
 */
import { readlinkSync } from 'node:fs';
import os from 'node:os';
import { parentPort, workerData } from 'node:worker_threads';
import type { Config } from './config/types.js';
import { createLogger, type Logger } from './observability/logger.js';
import { SelfStats } from './observability/self-stats.js';
import { buildSinks } from './sink/build-sinks.js';
import { Store } from './store/store.js';
import { Flusher } from './flush/flusher.js';
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
  const sinks = buildSinks(config, store, () => (flusher.isLeader ? flusher.token : null), self, base);
  const flusher = new Flusher(store, config, self, log, () => report(), undefined, sinks);
  const reported = Object.fromEntries(MIRRORED_STATS.map((k) => [k, 0])) as Record<(typeof MIRRORED_STATS)[number], number>;
  let seenCommitted = 0;
  let lastLagS: number | null = null;
  const report = (): void => {
    // Called at once after each commit (onCommitted), so this is the time from the boundary to the commit.
    if (flusher.periodsCommitted !== seenCommitted) {
      seenCommitted = flusher.periodsCommitted;
      lastLagS = Math.round(Date.now() / 1000) - flusher.lastCommittedTs;
    }
    const stages = flusher.lastStages;
    const deltas = {} as Record<(typeof MIRRORED_STATS)[number], number>;
    for (const k of MIRRORED_STATS) {
      deltas[k] = self[k] - reported[k];
      reported[k] = self[k];
    }
    const msg: FlushThreadReport = {
      type: 'report',
      leader: flusher.isLeader,
      periodsCommitted: flusher.periodsCommitted,
      lastCommittedTs: flusher.lastCommittedTs,
      lastFlushMs: stages ? Object.values(stages).reduce((a, b) => a + b, 0) : null,
      lastLagS,
      deltas,
      graphite: { ...self.graphite },
    };
    port.postMessage(msg);
  };
  for (const sink of sinks) sink.start();
  await flusher.start();
  const ticker = setInterval(report, REPORT_EVERY_MS);
  port.on('message', (m: FlushThreadMessage) => {
    if (m.type !== 'stop') return;
    clearInterval(ticker);
    void (async () => {
      // A clean stop: close and commit what is due (as leader), drain the outbox while still holding the lease,
      // then give the lease up.
      const deadline = Date.now() + m.drainMs;
      await flusher.closeForStop(Date.now() + m.drainMs / 2);
      for (const sink of sinks) await sink.stop(Math.max(0, deadline - Date.now()));
      await flusher.stop();
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
