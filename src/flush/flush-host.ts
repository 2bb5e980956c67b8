/**
 * Main-thread handle on the flush thread (src/flush-thread.ts, the thread's
 * composition root: it wires the flusher to the sinks): starts it,
 * mirrors its counters into this process's SelfStats (so the batcher emits
 * them and the console shows them), restarts it if it dies, and stops it
 * after the last batch was merged.
 */
import { Worker } from 'node:worker_threads';
import type { Config } from '../config/types.js';
import type { Logger } from '../observability/logger.js';
import type { SelfStats } from '../observability/self-stats.js';

export type FlushThreadMessage = { type: 'stop'; drainMs: number };

/** SelfStats counters the flush thread bumps; it reports them as deltas, which the main thread adds up. */
export const MIRRORED_STATS = ['outboxDropped', 'outboxDroppedBytes', 'carbonErrors', 'linesSent', 'redisTimeouts', 'valuesClamped', 'namesForgotten', 'namesDropped', 'historyErrors', 'historySkipped'] as const;
export type MirroredStat = (typeof MIRRORED_STATS)[number];

export type FlushThreadReport =
  | { type: 'ready' }
  | { type: 'stopped' }
  | { type: 'failed'; error: string }
  | {
      type: 'report';
      /** Leads at least one shard. */
      leader: boolean;
      /** The shards (indexes) this process leads. */
      shardsLed: number[];
      /** Periods committed by this process, every shard's summed. */
      periodsCommitted: number;
      /** Boundary (s) of the newest period this process committed, any shard. */
      lastCommittedTs: number;
      /** ms the last period this thread committed took, read to commit; null if none yet. */
      lastFlushMs: number | null;
      /** s from the last committed period's boundary to its commit; null if none yet. */
      lastLagS: number | null;
      /** Each counter's increase since the thread's previous report: never negative, even across a restart. */
      deltas: Record<MirroredStat, number>;
      graphite: SelfStats['graphite'];
    };

const RESTART_AFTER_MS = 1000;
/** Past its drain time, the thread gets this long to release the lease and close before it is terminated. */
const STOP_GRACE_MS = 3000;

/**
 * The flush thread's young generation (V8's semi-spaces are a third of it): a period of a million names allocates
 * its replies, Maps and lines in a few seconds, and with V8's default most of them were copied by scavenges before
 * being promoted. 192 MB (64 MB semi-spaces) cut the thread's GC and so the period's processing: 1M names a
 * period, 2 processes, one Redis, interleaved runs of `npm run bench:scale-curve -- --names 1000000 --procs 2
 * --redis single --shards 16 --periods 3`: tallyd CPU 55.6 / 55.1 -> 52.1 / 52.2 %, processing_time 633 / 638 ->
 * 496 / 544 ms, lag after the boundary 2.87 / 2.95 -> 2.30 / 2.57 s (2026-12-05). It is an upper bound: V8 grows
 * the semi-spaces only while a thread allocates fast, so a small deployment's thread stays small.
 */
const FLUSH_YOUNG_GENERATION_MB = 192;

/** A worker for flush-thread, under tsx (tests, `node --import tsx`) or from dist/. */
function spawnThread(workerData: unknown): Worker {
  const isTs = import.meta.url.endsWith('.ts');
  const url = new URL(isTs ? '../flush-thread.ts' : '../flush-thread.js', import.meta.url);
  const resourceLimits = { maxYoungGenerationSizeMb: FLUSH_YOUNG_GENERATION_MB };
  if (!isTs) return new Worker(url, { workerData, resourceLimits });
  // Worker threads don't inherit `--import tsx` on Node 20: register it first.
  const boot = `import('tsx/esm/api').then((t) => { t.register(); return import(${JSON.stringify(url.href)}); })`;
  return new Worker(boot, { eval: true, workerData, resourceLimits });
}

export class FlushHost {
  private worker: Worker | null = null;
  private stopping = false;
  leader = false;
  /** The shards this process leads (flush-thread.ts's last report). */
  shardsLed: number[] = [];
  periodsCommitted = 0;
  lastCommittedTs = 0;
  lastFlushMs: number | null = null;
  lastLagS: number | null = null;

  constructor(
    private readonly cfg: Config,
    private readonly self: SelfStats,
    private readonly log: Logger,
    private readonly logBindings: Record<string, unknown> = {},
  ) {}

  /** Resolves once the thread connected to Redis and its flusher runs. */
  start(): Promise<void> {
    return new Promise((resolve, reject) => {
      const w = spawnThread({ config: this.cfg, logBindings: this.logBindings });
      this.worker = w;
      let ready = false;
      w.on('message', (m: FlushThreadReport) => {
        if (m.type === 'ready') {
          ready = true;
          resolve();
        } else if (m.type === 'failed') {
          if (!ready) reject(new Error(`flush thread: ${m.error}`));
          else this.log.error({ err: m.error }, 'flush thread failed');
        } else if (m.type === 'report') {
          this.leader = m.leader;
          this.shardsLed = m.shardsLed;
          this.periodsCommitted = m.periodsCommitted;
          this.lastCommittedTs = m.lastCommittedTs;
          this.lastFlushMs = m.lastFlushMs;
          this.lastLagS = m.lastLagS;
          for (const k of MIRRORED_STATS) this.self[k] += m.deltas[k];
          this.self.graphite = m.graphite;
        }
      });
      w.on('error', (err) => {
        this.log.error({ err: err.message }, 'flush thread crashed');
        if (!ready) reject(err);
      });
      w.on('exit', (code) => {
        if (this.worker === w) this.worker = null;
        this.leader = false;
        this.shardsLed = [];
        if (this.stopping || !ready) return;
        this.log.error({ code }, `flush thread exited; restarting it in ${RESTART_AFTER_MS} ms`);
        setTimeout(() => {
          if (!this.stopping) this.start().catch((err: unknown) => this.log.error({ err: (err as Error).message }, 'flush thread restart failed'));
        }, RESTART_AFTER_MS);
      });
    });
  }

  /** Stops flushing: closes and commits what is due, drains the outbox for up to drainMs, then releases the lease. */
  async stop(drainMs = 1000): Promise<void> {
    this.stopping = true;
    const w = this.worker;
    if (!w) return;
    const done = new Promise<void>((r) => {
      w.once('exit', () => r());
      w.on('message', (m: FlushThreadReport) => {
        if (m.type === 'stopped') r();
      });
    });
    w.postMessage({ type: 'stop', drainMs } satisfies FlushThreadMessage);
    const timeout = setTimeout(() => void w.terminate(), drainMs + STOP_GRACE_MS);
    await done;
    clearTimeout(timeout);
    await w.terminate();
  }
}
