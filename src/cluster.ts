/**
 * `workers: N` (node:cluster): the primary forks N worker processes that
 * each run a whole Daemon. Workers share the UDP and TCP ports and the
 * console through cluster's shared handles, and each merges its own batches
 * into Redis; the lease makes one of them the flushing leader. Only worker 0
 * binds the ZeroMQ sockets, since a ZeroMQ endpoint can't be shared. The
 * state is in Redis, so this is how tallyd uses cores that statsd cannot.
 *
 * The primary forwards SIGINT/SIGTERM as SIGTERM, waits for every worker to
 * merge its last batch and exit, and exits 0 when all of them did. A worker
 * that dies on its own is replaced after a second; one that fails to start
 * (a port in use, Redis unreachable) stops the whole start with its error.
 */
import cluster, { type Worker } from 'node:cluster';
import type { Logger } from './observability/logger.js';

export const WORKER_INDEX_ENV = 'TALLYD_WORKER_INDEX';
const STOP_TIMEOUT_MS = 15_000;

export interface WorkerMessage {
  type: 'up' | 'failed';
  error?: string;
}

/** The worker's index (0-based), or null in a single-process run. */
export function workerIndex(): number | null {
  if (!cluster.isWorker) return null;
  return Number(process.env[WORKER_INDEX_ENV] ?? 0);
}

export function runPrimary(workers: number, log: Logger): Promise<number> {
  return new Promise((resolve) => {
    let stopping = false;
    let started = 0;
    const alive = new Map<number, Worker>();

    const fork = (index: number): void => {
      const w = cluster.fork({ [WORKER_INDEX_ENV]: String(index) });
      alive.set(index, w);
      w.on('message', (m: WorkerMessage) => {
        if (m.type === 'up' && ++started === workers) log.info({ workers }, 'all workers are up');
        if (m.type === 'failed') {
          // The worker printed its one-line error; a start failure stops everything.
          if (!stopping) stop(1);
        }
      });
      w.on('exit', (code, signal) => {
        alive.delete(index);
        if (stopping) {
          if (alive.size === 0) resolve(exitCode);
          return;
        }
        log.error({ worker: index, code, signal }, 'worker died; starting a new one in 1 s');
        setTimeout(() => {
          if (!stopping) fork(index);
        }, 1000);
      });
    };

    let exitCode = 0;
    const stop = (code: number): void => {
      stopping = true;
      exitCode = code;
      if (alive.size === 0) resolve(code);
      for (const w of alive.values()) w.process.kill('SIGTERM');
      setTimeout(() => {
        for (const w of alive.values()) w.process.kill('SIGKILL');
      }, STOP_TIMEOUT_MS).unref();
    };

    const onSignal = (sig: NodeJS.Signals): void => {
      if (stopping) return;
      log.info({ sig, workers: alive.size }, 'stopping workers');
      stop(0);
    };
    process.on('SIGINT', onSignal);
    process.on('SIGTERM', onSignal);
    log.info({ workers }, 'starting workers');
    for (let i = 0; i < workers; i++) fork(i);
  });
}

/** Tell the primary how the start went (no-op outside a cluster). */
export function reportToPrimary(m: WorkerMessage): void {
  if (cluster.isWorker && process.send) process.send(m);
}
