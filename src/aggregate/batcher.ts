/**
 * Owns the current Batch and merges it into Redis every batchInterval:
 * swap, encode, at most one batch in flight. While Redis is down encoded
 * batches wait in a bounded queue (oldest dropped and counted past
 * maxPendingBatches) and are retried in order; a batch id makes a retried
 * merge land at most once.
 *
 * Shards (DESIGN "Shards"): a sealed batch is split by shard (merge-args.ts,
 * once per distinct name), and its parts merge with one mergeBatch call per
 * shard, in parallel, each into its own shard's Store under the same batch id
 * (the dedupe set is per shard). A part that merged is done; a part that
 * failed is retried with the batch's next round; the batch leaves the queue
 * once every part is done. Shards without a part in a round get a heartbeat
 * in the same round, so no shard's leader waits for a process that holds
 * nothing for it; a shard whose part merged while another's still waits (a
 * master failing over) hears from the heartbeat timer meanwhile.
 *
 * Periods (DESIGN "Periods"): a batch holds the samples of one flush period,
 * the one in which this process received them: it is sealed at every
 * wall-clock boundary as well as every batchInterval, and merges into that
 * period's keys however late the merge happens. With every merge, and on a
 * heartbeat timer, the batcher records its watermark in each shard (the
 * oldest period it may still hold unmerged samples of that shard's), so a
 * shard's leader closes a period only once every live process has merged its
 * share. A part whose period was already closed in its shard (it was held
 * back longer than a member's ttl) goes into that shard's oldest open period
 * and its samples are counted in late_samples.
 */
import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import { nextBoundary, systemClock, type Clock } from '../clock.js';
import type { SampleSink } from '../parse/sample-sink.js';
import { quote, type Logger } from '../observability/logger.js';
import { RateLimitedLog } from '../observability/rate-limited-log.js';
import type { SelfStats } from '../observability/self-stats.js';
import { Batch } from './batch.js';
import type { MergeOutcome } from '../store/store.js';
import { shardBound, type MergeBound } from '../store/bound.js';
import { encodeMergeParts, type MergeArg, type ShardOf } from './merge-args.js';


/** One shard's side of the store (a Store is one). */
export interface MergeTarget {
  /** late: boundaryMs is not the batch's own period (that one closed without it): see mergeBatch-11.lua. */
  merge(batchId: string, boundaryMs: number, memberId: string, watermarkMs: number, args: MergeArg[], late: boolean, bound: MergeBound): Promise<MergeOutcome>;
  heartbeat(memberId: string, watermarkMs: number): Promise<void>;
  leave(memberId: string): Promise<void>;
}

/** Every shard's MergeTarget, in shard order, and which shard a name belongs to (a Store is one: store.shards, store.shardOf). */
export interface ShardedTarget {
  readonly shards: readonly MergeTarget[];
  shardOf(name: string): number;
}

/** A single target as the only shard. */
export function oneShard(target: MergeTarget): ShardedTarget {
  return { shards: [target], shardOf: () => 0 };
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
  /**
   * Distinct names a period takes, fleet-wide (mergeBatch-11.lua); 0 or absent: unbounded. Each shard's period
   * takes ceil(maxNamesPerPeriod / shards) of them (names spread evenly over the shards).
   */
  readonly maxNamesPerPeriod?: number;
}


/** One shard's share of an encoded batch. */
interface Part {
  readonly shard: number;
  readonly args: MergeArg[];
  readonly samples: number;
  /** Boundary (ms) of the period the samples were received in; moved forward only when that shard closed it without them. */
  boundaryMs: number;
  /** Moved to a later period because its own closed first. */
  late: boolean;
  /** Merged (or found merged: a duplicate). */
  done: boolean;
}

interface Encoded {
  id: string;
  /** One per shard that holds any of the batch's names. */
  parts: Part[];
  /** Rounds in which a part failed for a reason other than the connection (a script error, a part too big to send). */
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
  /** Shards with a heartbeat in flight. */
  private readonly beating = new Set<number>();
  /** Shards with a part of the current round being merged (until that part's merge answers). */
  private readonly merging = new Set<number>();
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
  private readonly shards: readonly MergeTarget[];
  private readonly shardOf: ShardOf;

  constructor(
    target: ShardedTarget,
    private readonly opts: BatcherOptions,
    private readonly self: SelfStats,
    private readonly ingest: IngestCounters,
    private readonly log: Logger,
    private readonly clock: Clock = systemClock,
  ) {
    this.mergeLog = new RateLimitedLog(log);
    this.lateLog = new RateLimitedLog(log);
    this.boundLog = new RateLimitedLog(log);
    this.shards = target.shards;
    if (this.shards.length === 0) throw new RangeError('a Batcher needs at least one shard');
    this.shardOf = (name) => target.shardOf(name);
    const maxNames = opts.maxNamesPerPeriod ?? 0;
    this.bound = shardBound(maxNames, this.shards.length, opts.prefixStats);
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
    // Reports at least every third of the ttl (at most every second): the timer looks twice as often, so a report
    // that came between two looks (a round, a boundary) delays the next by less than that.
    const every = Math.max(50, Math.min(1000, Math.floor(this.opts.leaseTtl / 3)));
    // Also while a round is in flight: a part stuck on a failing master must not keep the other shards' leaders
    // from hearing of this process for a member's ttl (they would close its periods without it).
    this.heartbeatTimer = setInterval(() => {
      if (this.clock.now() - this.reportedAt >= every / 2) this.heartbeat();
    }, Math.ceil(every / 2));
    this.heartbeat();
  }

  /** Seals the current batch at every wall-clock boundary: a batch never spans two periods. */
  private scheduleBoundary(): void {
    const now = this.clock.now();
    const b = nextBoundary(now, this.opts.flushInterval);
    this.boundaryTimer = this.clock.setTimeout(() => {
      this.swap(b + this.opts.flushInterval);
      this.startDrain();
      // Say at once where this process is, so a leader need not wait for the timer's heartbeat.
      this.heartbeat();
      this.scheduleBoundary();
    }, b - now);
  }

  /**
   * Per shard, the oldest period this process may hold unmerged samples of that shard's, not counting skip (the
   * batch being merged: a batch has at most one part per shard, so each part's merge reports the shard's
   * watermark as it is once that part is merged).
   */
  private watermarks(skip: Encoded | null): number[] {
    const w = new Array<number>(this.shards.length).fill(this.currentPeriodMs);
    for (const e of this.queue) {
      if (e === skip) continue;
      for (const p of e.parts) if (!p.done && p.boundaryMs < w[p.shard]!) w[p.shard] = p.boundaryMs;
    }
    return w;
  }

  /** Every shard's watermark, one command each, in parallel (a pipeline would have to stay on one slot). */
  private heartbeat(): void {
    this.reportedAt = this.clock.now();
    const w = this.watermarks(null);
    // A shard with a part being merged hears from that merge (a heartbeat sent beside it could land after it and
    // set the shard's watermark back).
    for (let s = 0; s < this.shards.length; s++) if (!this.merging.has(s)) this.heartbeatShard(s, w[s]!).catch(() => undefined);
  }

  /**
   * One shard's heartbeat; at most one in flight per shard (a shard whose master fails over does not pile them up).
   * A watermark computed while a round is in flight counts that round's parts as unmerged: never too high.
   */
  private heartbeatShard(shard: number, watermarkMs: number): Promise<void> {
    if (this.beating.has(shard)) return Promise.resolve();
    this.beating.add(shard);
    return this.shards[shard]!.heartbeat(this.memberId, watermarkMs).catch((err: unknown) => {
      this.mergeLog.warn(() => ({ msg: 'heartbeat to redis failed', fields: { shard, err: (err as Error).message } }));
      throw err;
    }).finally(() => this.beating.delete(shard));
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
        await Promise.allSettled(this.shards.map((t) => t.leave(this.memberId)));
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
    const parts = encodeMergeParts(b, this.shards.length, this.shardOf, this.bound.exemptPrefix)
      .map((p): Part => ({ shard: p.shard, args: p.args, samples: p.samples, boundaryMs: sealed, late: false, done: false }));
    this.queue.push({ id, parts, rejected: 0 });
    while (this.queue.length > this.opts.maxPendingBatches) {
      const dropped = this.queue.shift() as Encoded;
      this.self.batchesDropped++;
      this.mergeLog.warn(() => ({
        msg: 'redis unavailable too long: dropped the oldest local batch',
        fields: { maxPendingBatches: this.opts.maxPendingBatches, batchesDropped: this.self.batchesDropped, samples: unmergedSamples(dropped) },
      }));
    }
  }

  /**
   * Merges the queue's batches in order. A round sends every unmerged part of the head batch at once, each to its
   * shard, and a heartbeat to every other shard; the batch leaves the queue once every part is done. A round in
   * which a part failed counts once in merge_errors; its failed parts are retried in the next drain (the parts
   * that merged are not sent again).
   */
  private async drain(): Promise<void> {
    while (this.queue.length > 0) {
      const next = this.queue[0] as Encoded;
      const failed = await this.round(next);
      if (failed.length > 0) {
        this.self.mergeErrors++;
        const rejection = failed.find(isRejection);
        if (rejection !== undefined && ++next.rejected >= MAX_REJECTIONS) {
          // Retrying would block every later batch behind this one forever. The parts that merged stay merged.
          if (this.queue[0] === next) this.queue.shift();
          this.self.batchesDropped++;
          this.log.error({ err: (rejection as Error).message, batch: next.id, samples: unmergedSamples(next), batchesDropped: this.self.batchesDropped },
            'redis rejected a batch 3 times; dropped its unmerged parts');
          continue;
        }
        const err = (rejection ?? failed[0]) as Error;
        this.mergeLog.warn(() => ({
          msg: 'merge into redis failed; the batch is kept and retried',
          fields: { err: err.message, parts: failed.length, backlog: this.queue.length },
        }));
        return;
      }
      if (next.parts.some((p) => !p.done)) continue; // parts answered late: merged into their shard's oldest open period next
      if (this.queue[0] === next) this.queue.shift();
      this.self.batchesMerged++;
    }
  }

  /**
   * One round of batch e: its unmerged parts merged in parallel, every other shard heartbeated. Returns the parts'
   * errors. Each part is settled as its own merge answers, not when the round ends: a shard whose part is done
   * hears from the heartbeat timer again while another shard's part waits (a master failing over), so its leader
   * never takes this process for dead meanwhile.
   */
  private async round(e: Encoded): Promise<unknown[]> {
    this.reportedAt = this.clock.now();
    const w = this.watermarks(e);
    const sending = e.parts.filter((p) => !p.done);
    const busy = new Set(sending.map((p) => p.shard));
    // Not waited for: a heartbeat to a shard whose master is failing over must not hold the other shards' merges.
    for (let s = 0; s < this.shards.length; s++) if (!busy.has(s)) this.heartbeatShard(s, w[s]!).catch(() => undefined);
    for (const sh of busy) this.merging.add(sh);
    const merges = sending.map((p) => this.shards[p.shard]!.merge(e.id, p.boundaryMs, this.memberId, w[p.shard]!, p.args, p.late, this.bound)
      .then((res) => this.settle(p, res))
      .finally(() => this.merging.delete(p.shard)));
    const results = await Promise.allSettled(merges);
    const failed: unknown[] = [];
    for (const r of results) if (r.status === 'rejected') failed.push(r.reason);
    return failed;
  }

  /** One part's merge answered: done, or (late) re-aimed at its shard's oldest open period for the next round. */
  private settle(p: Part, res: MergeOutcome): void {
    if (res.status === 'late') {
      // Held back past its period's close in this shard (e.g. Redis unreachable longer than a member's ttl): the
      // shard's oldest open period takes it.
      const was = p.boundaryMs;
      p.boundaryMs = Math.max(res.closedMs + this.opts.flushInterval, was);
      p.late = true;
      this.self.lateSamples += p.samples;
      this.lateLog.warn(() => ({
        msg: 'a batch arrived after its period was closed; merged into the oldest open period',
        fields: { shard: p.shard, boundaryMs: was, intoMs: p.boundaryMs, samples: p.samples, lateSamples: this.self.lateSamples },
      }));
      return;
    }
    p.done = true;
    this.counted(res, p.boundaryMs);
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

/** Samples of e not merged yet (what dropping it loses). */
function unmergedSamples(e: Encoded): number {
  let n = 0;
  for (const p of e.parts) if (!p.done) n += p.samples;
  return n;
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}
