/**
 * Owns the current Batch and merges it into Redis every batchInterval:
 * swap, encode, one merge-8 call, at most one in flight. While Redis is down
 * encoded batches wait in a bounded queue (oldest dropped and counted past
 * maxPendingBatches) and are retried in order; a batch id makes a retried
 * merge land at most once.
 */
import { randomBytes } from 'node:crypto';
import type { SampleSink } from '../parse/sample-sink.js';
import type { Logger } from '../observability/logger.js';
import { RateLimitedLog } from '../observability/rate-limited-log.js';
import type { SelfStats } from '../observability/self-stats.js';
import { Batch } from './batch.js';
import { encodeMerge, type MergeArg } from './merge-args.js';

export interface MergeTarget {
  merge(batchId: string, args: MergeArg[]): Promise<boolean>;
}

/** Process-local counters the batcher folds into each batch as statsd counters. */
export interface IngestCounters {
  readonly metricsReceived: number;
  readonly badLines: number;
}

export interface BatcherOptions {
  readonly batchInterval: number;
  readonly maxPendingBatches: number;
  readonly prefixStats: string;
  /** Distinct names (plus set members and passthrough lines) at which a batch is merged before its tick. */
  readonly maxBatchNames: number;
}

interface Encoded {
  id: string;
  args: MergeArg[];
  /** Failures that were not about the connection (a script error, a batch too big to send). */
  rejected: number;
}

/** Samples between two checks of the batch's size: the check is off the per-sample path. */
const SIZE_CHECK_EVERY = 1024;

/** A batch Redis rejects this many times (not a connection error) is dropped and counted, not retried forever. */
const MAX_REJECTIONS = 3;

function isRejection(err: unknown): boolean {
  return err instanceof RangeError || err instanceof TypeError || (err as Error | undefined)?.name === 'ReplyError';
}

export class Batcher implements SampleSink {
  private current = new Batch();
  private readonly queue: Encoded[] = [];
  private inFlight: Promise<void> | null = null;
  private ticker: NodeJS.Timeout | null = null;
  private readonly node = randomBytes(6).toString('hex');
  private seq = 0;
  private sinceSizeCheck = 0;
  private readonly mergeLog: RateLimitedLog;
  /** Self-metrics folded into each batch as counters: [name, read current total, total at the last swap]. */
  private readonly selfCounters: Array<[string, () => number, number]>;

  constructor(
    private readonly target: MergeTarget,
    private readonly opts: BatcherOptions,
    private readonly self: SelfStats,
    private readonly ingest: IngestCounters,
    private readonly log: Logger,
  ) {
    this.mergeLog = new RateLimitedLog(log);
    const p = opts.prefixStats;
    // statsd's own three, then tallyd's loss and ZeroMQ counters (see SelfStats), which only appear once non-zero.
    this.selfCounters = [
      [`${p}.packets_received`, () => self.packetsReceived, 0],
      [`${p}.metrics_received`, () => ingest.metricsReceived, 0],
      [`${p}.bad_lines_seen`, () => ingest.badLines, 0],
      [`${p}.oversized_packets`, () => self.oversizedPackets, 0],
      [`${p}.batches_dropped`, () => self.batchesDropped, 0],
      [`${p}.merge_errors`, () => self.mergeErrors, 0],
      [`${p}.outbox_dropped`, () => self.outboxDropped, 0],
      [`${p}.outbox_dropped_bytes`, () => self.outboxDroppedBytes, 0],
      [`${p}.carbon_errors`, () => self.carbonErrors, 0],
      [`${p}.zmq_messages_received`, () => self.zmqMessagesReceived, 0],
      [`${p}.zmq_bad_frames`, () => self.zmqBadFrames, 0],
      [`${p}.zmq_bad_items`, () => self.zmqBadItems, 0],
      [`${p}.zmq_oversized`, () => self.zmqOversized, 0],
    ];
  }

  counter(name: string, value: number, rate: number, key?: number): void {
    this.current.counter(name, value, rate, key);
    if (++this.sinceSizeCheck >= SIZE_CHECK_EVERY) this.checkSize();
  }
  gauge(name: string, value: number, delta: boolean, key?: number): void {
    this.current.gauge(name, value, delta, key);
    if (++this.sinceSizeCheck >= SIZE_CHECK_EVERY) this.checkSize();
  }
  timer(name: string, value: number, rate: number, key?: number): void {
    this.current.timer(name, value, rate, key);
    if (++this.sinceSizeCheck >= SIZE_CHECK_EVERY) this.checkSize();
  }
  set(name: string, member: string): void {
    this.current.set(name, member);
    if (++this.sinceSizeCheck >= SIZE_CHECK_EVERY) this.checkSize();
  }
  passthrough(line: string): void {
    this.current.passthrough(line);
    if (++this.sinceSizeCheck >= SIZE_CHECK_EVERY) this.checkSize();
  }

  /**
   * A batch past maxBatchNames distinct names (or set members) is sealed and
   * queued at once, before the tick: its merge is one Lua script, and Redis
   * runs nothing else meanwhile (a 300k-name merge held it ~1 s). Each sealed
   * batch still lands atomically, in one period.
   */
  private checkSize(): void {
    this.sinceSizeCheck = 0;
    if (this.current.size >= this.opts.maxBatchNames) this.tick();
  }

  start(): void {
    this.ticker = setInterval(() => this.tick(), this.opts.batchInterval);
  }

  /** Batches waiting for Redis (for /health and tests). */
  get backlog(): number {
    return this.queue.length + (this.inFlight ? 1 : 0);
  }

  /** Swap the current batch into the queue and start a merge if none runs. */
  tick(): void {
    this.swap();
    if (!this.inFlight && this.queue.length > 0) {
      this.inFlight = this.drain().finally(() => {
        this.inFlight = null;
      });
    }
  }

  /** Stop ticking, merge everything received, give up after timeoutMs. */
  async stop(timeoutMs: number): Promise<void> {
    if (this.ticker) clearInterval(this.ticker);
    this.ticker = null;
    this.swap();
    const deadline = Date.now() + timeoutMs;
    while (Date.now() < deadline) {
      if (this.inFlight) await this.inFlight;
      if (this.queue.length === 0) return;
      this.inFlight = this.drain().finally(() => {
        this.inFlight = null;
      });
      await this.inFlight;
      if (this.queue.length > 0) await sleep(Math.min(200, Math.max(0, deadline - Date.now())));
    }
    if (this.queue.length > 0) {
      this.log.error({ batches: this.queue.length }, 'stopping with batches that could not be merged into redis');
    }
  }

  private swap(): void {
    const b = this.current;
    let changed = !b.isEmpty;
    for (const entry of this.selfCounters) {
      const total = entry[1]();
      if (total !== entry[2]) {
        b.counter(entry[0], total - entry[2], 1);
        entry[2] = total;
        changed = true;
      }
    }
    if (!changed) return;
    this.current = new Batch();
    const id = `${this.node}:${++this.seq}`;
    this.queue.push({ id, args: encodeMerge(b, id), rejected: 0 });
    while (this.queue.length > this.opts.maxPendingBatches) {
      this.queue.shift();
      this.self.batchesDropped++;
      this.mergeLog.warn(() => ({
        msg: 'redis unavailable too long: dropped the oldest local batch',
        fields: { maxPendingBatches: this.opts.maxPendingBatches, batchesDropped: this.self.batchesDropped },
      }));
    }
  }

  private async drain(): Promise<void> {
    while (this.queue.length > 0) {
      const next = this.queue[0] as Encoded;
      try {
        await this.target.merge(next.id, next.args);
      } catch (err) {
        this.self.mergeErrors++;
        if (isRejection(err) && ++next.rejected >= MAX_REJECTIONS) {
          // Retrying would block every later batch behind this one forever.
          if (this.queue[0] === next) this.queue.shift();
          this.self.batchesDropped++;
          this.log.error({ err: (err as Error).message, batch: next.id, batchesDropped: this.self.batchesDropped }, 'redis rejected a batch 3 times; dropped it');
          continue;
        }
        this.mergeLog.warn(() => ({
          msg: 'merge into redis failed; the batch is kept and retried',
          fields: { err: (err as Error).message, backlog: this.queue.length },
        }));
        return;
      }
      if (this.queue[0] === next) this.queue.shift();
      this.self.batchesMerged++;
    }
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}
