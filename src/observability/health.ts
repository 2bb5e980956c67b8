/**
 * Health from facts: one object gathers what tells whether this tallyd does
 * its job — Redis answers, periods get committed (by whichever process
 * leads), the backlogs (outbox, local batches) and the loss counters — and
 * decides `up` or `down` with the reasons. The console's `health` and
 * `stats` print a HealthReport; a later HTTP endpoint can serve it as JSON as
 * it is (plain data, no class instances).
 *
 * Down when any of:
 * - the operator said `health down` (wins over everything; `health up` only
 *   lets the facts decide again);
 * - Redis does not answer a PING within pingTimeoutMs (or the connection is
 *   not ready);
 * - a native UDP reader stopped after a socket error it could not clear;
 * - the process is stopping (its clean stop began: /readyz turns 503 while
 *   it drains, so a load balancer sends elsewhere);
 * - on some shard, no period has been committed, by any process, for three
 *   flush intervals, counted from the later of that shard's last committed
 *   boundary (its Keys.lastCommit, set by the commit script) and this
 *   process's start, so a fresh start is not down before it had the chance
 *   to commit: the shard whose last commit is oldest decides (a shard that
 *   never committed is the oldest). Only shard 0 counts while the flush side
 *   reports no shard list (FlushFacts.shardsLed): one Flusher, leading shard 0;
 * - the outbox (every shard's, summed) holds OUTBOX_FULL_SHARE (90 %) of outboxMaxBytes or more (when
 *   that option is given): Carbon does not keep up, and at the bound each
 *   commit drops the oldest lines (it trims to just under the bound, so the
 *   bound itself is seldom reached exactly).
 *
 * It depends on narrow providers, not on the Store, FlushHost and Batcher
 * classes, so a test can feed it facts.
 */
import { withTimeout } from '../clock.js';

/** One shard's facts (a shard's Store). */
export interface ShardFacts {
  /** Boundary ms of the last period anyone committed on this shard, or null. */
  lastCommitted(): Promise<number | null>;
  outboxStats(): Promise<{ entries: number; bytes: number; oldestMs: number | null }>;
}

/** Redis facts (Store): the connection, and every shard's facts in shard order. */
export interface RedisFacts {
  /** Round-trip ms; rejects when Redis does not answer within timeoutMs. */
  ping(timeoutMs: number): Promise<number>;
  readonly shards: readonly ShardFacts[];
}

/**
 * This process's flushing (FlushHost). lastCommittedTs: unix s of the last period it committed, 0 if none.
 * shardsLed: the shards it leads, when the flush side reports them; without, `leader` means shard 0 (one Flusher).
 */
export interface FlushFacts {
  readonly leader: boolean;
  readonly shardsLed?: readonly number[];
  readonly lastCommittedTs: number;
}

/** Local batches not yet merged into Redis (Batcher). */
export interface BatchFacts {
  readonly backlog: number;
}

/** The loss counters of this process (SelfStats). */
export interface LossFacts {
  readonly batchesDropped: number;
  readonly mergeErrors: number;
  readonly oversizedPackets: number;
  readonly outboxDropped: number;
  readonly carbonErrors: number;
  readonly udpKernelDrops: number;
  readonly redisTimeouts: number;
  readonly udpSocketErrors: number;
  /** Native UDP readers stopped by a socket error they could not clear: down while any is. */
  readonly udpReadersStopped: number;
}

export type HealthStatus = 'up' | 'down';

export interface HealthReport {
  status: HealthStatus;
  /** Why it is down, one sentence each; empty when up. */
  reasons: string[];
  /** What the operator set (`health up|down`, initially healthStatus). */
  operatorStatus: HealthStatus;
  checkedAtMs: number;
  redis: { answers: boolean; pingMs: number | null; error: string | null };
  /**
   * The oldest of the shards' last committed periods, by any process (boundaryMs null: that shard committed none
   * yet, or Redis did not answer), and which shard it is (null when Redis did not answer).
   */
  lastCommit: { boundaryMs: number | null; ageMs: number | null; shard: number | null };
  /** Unix s of the last period this process committed, or null. */
  lastCommittedByThisProcessS: number | null;
  /** Whether this process leads any shard. */
  leader: boolean;
  /** The prefix's number of shards (redis.shards) and the ones this process leads, ascending. */
  shards: { count: number; led: number[] };
  /** Summed over the shards (oldestMs: the oldest entry of any shard); null when Redis did not answer. */
  outbox: { entries: number; bytes: number; oldestMs: number | null; oldestAgeMs: number | null } | null;
  /** The outbox bound (outboxMaxBytes), or null when not given. */
  outboxMaxBytes: number | null;
  /** Local batches waiting to be merged into Redis. */
  batchesWaiting: number;
  flushIntervalMs: number;
  /** The loss counters, named as their self-metrics. */
  losses: {
    batches_dropped: number;
    merge_errors: number;
    oversized_packets: number;
    outbox_dropped: number;
    carbon_errors: number;
    udp_kernel_drops: number;
    redis_timeouts: number;
    udp_socket_errors: number;
  };
}

export interface HealthOptions {
  readonly flushIntervalMs: number;
  readonly operatorStatus: HealthStatus;
  /** Longest wait for each Redis read of a check. */
  readonly pingTimeoutMs?: number;
  /** Periods without a commit after which health is down. */
  readonly stalePeriods?: number;
  /** The outbox bound in bytes: at OUTBOX_FULL_SHARE of it or more, health is down. */
  readonly outboxMaxBytes?: number;
  readonly now?: () => number;
}

const DEFAULT_PING_TIMEOUT_MS = 1000;
const DEFAULT_STALE_PERIODS = 3;

/** Share of outboxMaxBytes at which the outbox counts as full. */
export const OUTBOX_FULL_SHARE = 0.9;

export const OPERATOR_DOWN = 'set down by the operator (health down)';

export const STOPPING = 'stopping (SIGTERM or SIGINT): draining, then exiting';

export class HealthFacts {
  /** The operator's word (console `health up|down`). */
  operatorStatus: HealthStatus;
  /** Set when the process starts its clean stop: down from then on, so a load balancer stops sending (HTTP /readyz). */
  stopping = false;
  private readonly startedAtMs: number;
  private readonly now: () => number;
  private readonly pingTimeoutMs: number;
  private readonly stalePeriods: number;

  constructor(
    private readonly redis: RedisFacts,
    private readonly flush: FlushFacts | null,
    private readonly batches: BatchFacts | null,
    private readonly losses: LossFacts,
    private readonly opts: HealthOptions,
  ) {
    this.operatorStatus = opts.operatorStatus;
    this.now = opts.now ?? Date.now;
    this.startedAtMs = this.now();
    this.pingTimeoutMs = opts.pingTimeoutMs ?? DEFAULT_PING_TIMEOUT_MS;
    this.stalePeriods = opts.stalePeriods ?? DEFAULT_STALE_PERIODS;
  }

  async report(): Promise<HealthReport> {
    const reasons: string[] = [];
    if (this.operatorStatus === 'down') reasons.push(OPERATOR_DOWN);
    if (this.stopping) reasons.push(STOPPING);
    const redis: HealthReport['redis'] = { answers: false, pingMs: null, error: null };
    let lastCommitMs: number | null = null;
    let oldestShard: number | null = null;
    let outbox: HealthReport['outbox'] = null;
    const shards = this.redis.shards;
    try {
      redis.pingMs = Math.round((await this.redis.ping(this.pingTimeoutMs)) * 100) / 100;
      const [lasts, obs] = await Promise.all([
        this.bounded(Promise.all(shards.map((s) => s.lastCommitted()))),
        this.bounded(Promise.all(shards.map((s) => s.outboxStats()))),
      ]);
      redis.answers = true;
      ({ boundaryMs: lastCommitMs, shard: oldestShard } = oldestCommit(this.flushesEveryShard() ? lasts : lasts.slice(0, 1)));
      const ob = sumOutboxes(obs);
      outbox = { ...ob, oldestAgeMs: ob.oldestMs === null ? null : Math.max(0, this.now() - ob.oldestMs) };
    } catch (err) {
      redis.error = (err as Error).message;
      reasons.push(`redis does not answer: ${redis.error}`);
    }
    const now = this.now();
    const interval = this.opts.flushIntervalMs;
    if (redis.answers) {
      const since = Math.max(lastCommitMs ?? -Infinity, this.startedAtMs);
      if (now - since > this.stalePeriods * interval) {
        const last = lastCommitMs === null ? 'none yet' : `${new Date(lastCommitMs).toISOString()}, ${Math.round((now - lastCommitMs) / 1000)} s ago`;
        const where = shards.length > 1 ? ` on shard ${oldestShard ?? 0} of ${shards.length} (the shard with the oldest commit)` : '';
        reasons.push(`no period committed${where} for ${this.stalePeriods} flush intervals (${(this.stalePeriods * interval) / 1000} s); last committed period: ${last}`);
      }
    }
    const maxBytes = this.opts.outboxMaxBytes ?? null;
    if (outbox && maxBytes !== null && outbox.bytes >= OUTBOX_FULL_SHARE * maxBytes) {
      const pct = Math.floor((100 * outbox.bytes) / maxBytes);
      reasons.push(`the outbox is at ${pct} % of its bound: ${outbox.bytes} bytes of outboxMaxBytes ${maxBytes}; Carbon does not keep up, and at the bound each commit drops the oldest lines`);
    }
    const l = this.losses;
    if (l.udpReadersStopped > 0) reasons.push(`${l.udpReadersStopped} udp reader(s) stopped after a socket error they could not clear (see the log); restart tallyd`);
    const byThis = this.flush?.lastCommittedTs ?? 0;
    const led = this.shardsLed();
    return {
      status: reasons.length === 0 ? 'up' : 'down',
      reasons,
      operatorStatus: this.operatorStatus,
      checkedAtMs: now,
      redis,
      lastCommit: { boundaryMs: lastCommitMs, ageMs: lastCommitMs === null ? null : now - lastCommitMs, shard: oldestShard },
      lastCommittedByThisProcessS: byThis > 0 ? byThis : null,
      leader: led.length > 0,
      shards: { count: shards.length, led },
      outbox,
      outboxMaxBytes: maxBytes,
      batchesWaiting: this.batches?.backlog ?? 0,
      flushIntervalMs: interval,
      losses: {
        batches_dropped: l.batchesDropped,
        merge_errors: l.mergeErrors,
        oversized_packets: l.oversizedPackets,
        outbox_dropped: l.outboxDropped,
        carbon_errors: l.carbonErrors,
        udp_kernel_drops: l.udpKernelDrops,
        redis_timeouts: l.redisTimeouts,
        udp_socket_errors: l.udpSocketErrors,
      },
    };
  }

  /**
   * Whether every shard is expected to commit its periods: yes, unless this process's flush side reports no shard
   * list (FlushFacts.shardsLed), i.e. is the flush side from before shards, whose one Flusher leads shard 0 alone; then
   * shard 0 alone decides staleness. A process without a flush side (null) expects every shard.
   */
  private flushesEveryShard(): boolean {
    return this.flush === null || this.flush.shardsLed !== undefined;
  }

  /** The shards this process leads: as the flush side reports them, else shard 0 while it holds the (one) lease. */
  private shardsLed(): number[] {
    const f = this.flush;
    if (f === null) return [];
    if (f.shardsLed !== undefined) return [...f.shardsLed].sort((a, b) => a - b);
    return f.leader ? [0] : [];
  }

  /** A Redis read that answered the PING may still hang: give it the same bound. */
  private bounded<T>(p: Promise<T>): Promise<T> {
    p.catch(() => undefined);
    return withTimeout(p, this.pingTimeoutMs, `no reply within ${this.pingTimeoutMs} ms`);
  }
}

/** The shard whose last commit is oldest (one that committed none counts as oldest; the lowest index among equals). */
export function oldestCommit(lasts: ReadonlyArray<number | null>): { boundaryMs: number | null; shard: number | null } {
  let shard: number | null = null;
  let boundaryMs: number | null = null;
  for (let i = 0; i < lasts.length; i++) {
    const b = lasts[i] ?? null;
    if (shard === null || (boundaryMs !== null && (b === null || b < boundaryMs))) {
      shard = i;
      boundaryMs = b;
    }
  }
  return { boundaryMs, shard };
}

/** Every shard's outbox as one: entries and bytes summed, the oldest entry of any. */
export function sumOutboxes(obs: ReadonlyArray<{ entries: number; bytes: number; oldestMs: number | null }>): { entries: number; bytes: number; oldestMs: number | null } {
  let entries = 0;
  let bytes = 0;
  let oldestMs: number | null = null;
  for (const o of obs) {
    entries += o.entries;
    bytes += o.bytes;
    if (o.oldestMs !== null && (oldestMs === null || o.oldestMs < oldestMs)) oldestMs = o.oldestMs;
  }
  return { entries, bytes, oldestMs };
}
