/**
 * Owns the current Batch and merges it into Redis every batchInterval:
 * swap, encode, one mergeBatch call, at most one in flight. While Redis is
 * down encoded batches wait in a bounded queue (oldest dropped and counted
 * past maxPendingBatches) and are retried in order; a batch id makes a
 * retried merge land at most once.
 *
 * Periods (DESIGN "Periods"): a batch holds the samples of one flush period,
 * the one in which this process received them: it is sealed at every
 * wall-clock boundary as well as every batchInterval, and merges into that
 * period's keys however late the merge happens. With every merge, and on a
 * heartbeat timer, the batcher records its watermark in Redis (the oldest
 * period it may still hold unmerged samples of), so the leader closes a
 * period only once every live process has merged its share. A batch whose
 * period was already closed (it was held back longer than a member's ttl)
 * goes into the oldest open period and is counted in late_samples.
 */
import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import { nextBoundary, systemClock, type Clock } from '../clock.js';
import type { SampleSink } from '../parse/sample-sink.js';
import { quote, type Logger } from '../observability/logger.js';
import { RateLimitedLog } from '../observability/rate-limited-log.js';
import type { SelfStats } from '../observability/self-stats.js';
import { Batch } from './batch.js';
import type { MergeBound, MergeOutcome } from '../store/store.js';
import { encodeMerge, type MergeArg } from './merge-args.js';


export interface MergeTarget {
  /** late: boundaryMs is not the batch's own period (that one closed without it): see mergeBatch-15.lua. */
  merge(batchId: string, boundaryMs: number, memberId: string, watermarkMs: number, args: MergeArg[], late: boolean, bound: MergeBound): Promise<MergeOutcome>;
  heartbeat(memberId: string, watermarkMs: number): Promise<void>;
  leave(memberId: string): Promise<void>;
}

/** Process-local counters the batcher folds into each batch as statsd counters. */
export interface IngestCounters {
  readonly metricsReceived: number;
  readonly badLines: number;
  /** DogStatsD events and service checks seen and ignored. */
  readonly eventsIgnored?: number;
}

export interface BatcherOptions {
  readonly batchInterval: number;
  readonly flushInterval: number;
  /** A member that reports nothing for this long is dead to the leader; heartbeats go out at a third of it. */
  readonly leaseTtl: number;
  readonly maxPendingBatches: number;
  readonly prefixStats: string;
  /** Distinct names (plus set members and passthrough lines) at which a batch is merged before its tick. */
  readonly maxBatchNames: number;
  /** Distinct names a period takes, fleet-wide (mergeBatch-15.lua); 0 or absent: unbounded. */
  readonly maxNamesPerPeriod?: number;
}


interface Encoded {
  id: string;
  /** Boundary (ms) of the period the samples were received in; moved forward only when that period closed without them. */
  boundaryMs: number;
  args: MergeArg[];
  samples: number;
  /** Moved to a later period because its own closed first. */
  late: boolean;
  /** Failures that were not about the connection (a script error, a batch too big to send). */
  rejected: number;
}

/** Samples between two checks of the batch's size: the check is off the per-sample path. */
const SIZE_CHECK_EVERY = 1024;

/** A batch Redis rejects this many times (not a connection error) is dropped and counted, not retried forever. */
const MAX_REJECTIONS = 3;

/** A command timeout (ioredis "Command timed out", redis.commandTimeout) is not a rejection: the batch is retried. */
function isRejection(err: unknown): boolean {
  return err instanceof RangeError || err instanceof TypeError || (err as Error | undefined)?.name === 'ReplyError';
}

export class Batcher implements SampleSink {
  private current = new Batch();
  /** Boundary (ms) of the period the current batch collects. */
  private currentPeriodMs: number;
  private readonly queue: Encoded[] = [];
  private inFlight: Promise<void> | null = null;
  private ticker: NodeJS.Timeout | null = null;
  private boundaryTimer: NodeJS.Timeout | null = null;
  private heartbeatTimer: NodeJS.Timeout | null = null;
  /** When this process last told Redis its watermark (a merge or a heartbeat), ms. */
  private reportedAt = 0;
  private readonly node = randomBytes(6).toString('hex');
  /** This process's entry in the members hash. */
  readonly memberId = `${hostname()}:${process.pid}:${this.node}`;
  private seq = 0;
  private sinceSizeCheck = 0;
  private readonly mergeLog: RateLimitedLog;
  private readonly lateLog: RateLimitedLog;
  private readonly boundLog: RateLimitedLog;
  private readonly bound: MergeBound;
  /** Self-metrics folded into each batch as counters: [name, read current total, total at the last swap]. */
  private readonly selfCounters: Array<[string, () => number, number]>;

  constructor(
    private readonly target: MergeTarget,
    private readonly opts: BatcherOptions,
    private readonly self: SelfStats,
    private readonly ingest: IngestCounters,
    private readonly log: Logger,
    private readonly clock: Clock = systemClock,
  ) {
    this.mergeLog = new RateLimitedLog(log);
    this.lateLog = new RateLimitedLog(log);
    this.boundLog = new RateLimitedLog(log);
    this.bound = { maxNames: opts.maxNamesPerPeriod ?? 0, exemptPrefix: `${opts.prefixStats}.` };
    this.currentPeriodMs = nextBoundary(clock.now(), opts.flushInterval);
    const p = opts.prefixStats;
    // statsd's own three, then tallyd's loss and ZeroMQ counters (see SelfStats), which only appear once non-zero.
    this.selfCounters = [
      [`${p}.packets_received`, () => self.packetsReceived, 0],
      [`${p}.metrics_received`, () => ingest.metricsReceived, 0],
      [`${p}.bad_lines_seen`, () => ingest.badLines, 0],
      [`${p}.oversized_packets`, () => self.oversizedPackets, 0],
      [`${p}.batches_dropped`, () => self.batchesDropped, 0],
      [`${p}.merge_errors`, () => self.mergeErrors, 0],
      [`${p}.late_samples`, () => self.lateSamples, 0],
      [`${p}.outbox_dropped`, () => self.outboxDropped, 0],
      [`${p}.outbox_dropped_bytes`, () => self.outboxDroppedBytes, 0],
      [`${p}.carbon_errors`, () => self.carbonErrors, 0],
      [`${p}.zmq_messages_received`, () => self.zmqMessagesReceived, 0],
      [`${p}.zmq_bad_frames`, () => self.zmqBadFrames, 0],
      [`${p}.zmq_bad_items`, () => self.zmqBadItems, 0],
      [`${p}.zmq_oversized`, () => self.zmqOversized, 0],
      [`${p}.zmq_disconnects`, () => self.zmqDisconnects, 0],
      [`${p}.udp_kernel_drops`, () => self.udpKernelDrops, 0],
      [`${p}.redis_timeouts`, () => self.redisTimeouts, 0],
      [`${p}.tcp_connections_refused`, () => self.tcpConnectionsRefused, 0],
      [`${p}.tcp_idle_closed`, () => self.tcpIdleClosed, 0],
      [`${p}.udp_socket_errors`, () => self.udpSocketErrors, 0],
      [`${p}.events_ignored`, () => ingest.eventsIgnored ?? 0, 0],
      [`${p}.names_dropped`, () => self.namesDropped, 0],
      [`${p}.values_clamped`, () => self.valuesClamped, 0],
      [`${p}.names_forgotten`, () => self.namesForgotten, 0],
      [`${p}.history_errors`, () => self.historyErrors, 0],
      [`${p}.history_skipped`, () => self.historySkipped, 0],
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
   * runs nothing else meanwhile (bench/README.md: how long). Each sealed
   * batch still lands atomically, in one period.
   */
  private checkSize(): void {
    this.sinceSizeCheck = 0;
    if (this.current.size >= this.opts.maxBatchNames) this.tick();
  }

  start(): void {
    this.ticker = setInterval(() => this.tick(), this.opts.batchInterval);
    this.scheduleBoundary();
    const every = Math.max(50, Math.min(1000, Math.floor(this.opts.leaseTtl / 3)));
    this.heartbeatTimer = setInterval(() => {
      if (this.clock.now() - this.reportedAt >= every && !this.inFlight) this.heartbeat();
    }, every);
    this.heartbeat();
  }

  /** Seals the current batch at every wall-clock boundary: a batch never spans two periods. */
  private scheduleBoundary(): void {
    const now = this.clock.now();
    const b = nextBoundary(now, this.opts.flushInterval);
    this.boundaryTimer = this.clock.setTimeout(() => {
      this.swap(b + this.opts.flushInterval);
      this.startDrain();
      // Nothing to merge: say at once that this process is past the period, so the leader need not wait for a heartbeat.
      if (!this.inFlight) this.heartbeat();
      this.scheduleBoundary();
    }, b - now);
  }

  /** The oldest period this process may hold unmerged samples of, not counting skip (the batch being merged). */
  private watermark(skip: Encoded | null): number {
    let w = this.currentPeriodMs;
    for (const e of this.queue) if (e !== skip && e.boundaryMs < w) w = e.boundaryMs;
    return w;
  }

  private heartbeat(): void {
    this.reportedAt = this.clock.now();
    this.target.heartbeat(this.memberId, this.watermark(null)).catch((err: unknown) =>
      this.mergeLog.warn(() => ({ msg: 'heartbeat to redis failed', fields: { err: (err as Error).message } })),
    );
  }

  /** Batches waiting for Redis (for /health and tests). */
  get backlog(): number {
    return this.queue.length + (this.inFlight ? 1 : 0);
  }

  /** Swap the current batch into the queue and start a merge if none runs. */
  tick(): void {
    this.swap(0);
    this.startDrain();
  }

  private startDrain(): void {
    if (!this.inFlight && this.queue.length > 0) {
      this.inFlight = this.drain().finally(() => {
        this.inFlight = null;
      });
    }
  }

  /** Stop ticking, merge everything received, leave the members, give up after timeoutMs. */
  async stop(timeoutMs: number): Promise<void> {
    if (this.ticker) clearInterval(this.ticker);
    if (this.heartbeatTimer) clearInterval(this.heartbeatTimer);
    if (this.boundaryTimer) this.clock.clearTimeout(this.boundaryTimer);
    this.ticker = this.heartbeatTimer = this.boundaryTimer = null;
    this.swap(0);
    const deadline = Date.now() + timeoutMs;
    while (Date.now() < deadline) {
      if (this.inFlight) await this.inFlight;
      if (this.queue.length === 0) {
        await this.target.leave(this.memberId).catch(() => undefined);
        return;
      }
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

  /**
   * Seals the current batch (if it holds anything) and starts the next one,
   * for the period of now, or at least atLeastMs (a boundary timer that
   * fired a little early still moves on to the next period).
   */
  private swap(atLeastMs: number): void {
    // Never backwards, even if the wall clock steps back: a watermark already reported must stay true.
    const period = Math.max(nextBoundary(this.clock.now(), this.opts.flushInterval), atLeastMs, this.currentPeriodMs);
    const sealed = this.currentPeriodMs;
    this.currentPeriodMs = period;
    const b = this.current;
    this.self.valuesClamped += b.clamped;
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
    this.queue.push({ id, boundaryMs: sealed, args: encodeMerge(b, id), samples: b.samples, late: false, rejected: 0 });
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
        this.reportedAt = this.clock.now();
        const res = await this.target.merge(next.id, next.boundaryMs, this.memberId, this.watermark(next), next.args, next.late, this.bound);
        if (res.status === 'late') {
          // Held back past its period's close (e.g. Redis unreachable longer than a member's ttl): the oldest open period takes it.
          const was = next.boundaryMs;
          next.boundaryMs = Math.max(res.closedMs + this.opts.flushInterval, was);
          next.late = true;
          this.self.lateSamples += next.samples;
          this.lateLog.warn(() => ({
            msg: 'a batch arrived after its period was closed; merged into the oldest open period',
            fields: { boundaryMs: was, intoMs: next.boundaryMs, samples: next.samples, lateSamples: this.self.lateSamples },
          }));
          continue;
        }
        this.counted(res, next.boundaryMs);
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

  /**
   * What a merge dropped (maxNamesPerPeriod) or clamped, into SelfStats; the next batch carries it
   * to Redis. A duplicate's counts are those of a first attempt whose reply was lost: counted once.
   */
  private counted(res: Extract<MergeOutcome, { status: 'merged' | 'duplicate' }>, boundaryMs: number): void {
    if (res.clamped) this.self.valuesClamped += res.clamped;
    if (!res.namesDropped) return;
    this.self.namesDropped += res.namesDropped;
    const dropped = res.namesDropped;
    const examples = quote(res.status === 'merged' ? (res.droppedExamples ?? []).join(' ') : ''); // cut to 200 characters
    this.boundLog.warn(() => ({
      msg: 'a period holds maxNamesPerPeriod distinct names: samples of new names dropped',
      fields: { boundaryMs, maxNamesPerPeriod: this.bound.maxNames, dropped, namesDropped: this.self.namesDropped, examples },
    }));
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}
