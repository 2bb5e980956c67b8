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
 * - no period has been committed on this prefix, by any process, for three
 *   flush intervals, counted from the later of the last committed boundary
 *   (Keys.lastCommit, set by the commit script) and this process's start, so
 *   a fresh start is not down before it had the chance to commit;
 * - the outbox holds OUTBOX_FULL_SHARE (90 %) of outboxMaxBytes or more (when
 *   that option is given): Carbon does not keep up, and at the bound each
 *   commit drops the oldest lines (it trims to just under the bound, so the
 *   bound itself is seldom reached exactly).
 *
 * It depends on narrow providers, not on the Store, FlushHost and Batcher
 * classes, so a test can feed it facts.
 */
import { withTimeout } from '../clock.js';

/** Redis facts (Store). */
export interface RedisFacts {
  /** Round-trip ms; rejects when Redis does not answer within timeoutMs. */
  ping(timeoutMs: number): Promise<number>;
  /** Boundary ms of the last period anyone committed, or null. */
  lastCommitted(): Promise<number | null>;
  outboxStats(): Promise<{ entries: number; bytes: number; oldestMs: number | null }>;
}

/** This process's flushing (FlushHost). lastCommittedTs: unix s of the last period it committed, 0 if none. */
export interface FlushFacts {
  readonly leader: boolean;
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
  /** The last period committed on this prefix by any process (null: none yet, or Redis did not answer). */
  lastCommit: { boundaryMs: number | null; ageMs: number | null };
  /** Unix s of the last period this process committed, or null. */
  lastCommittedByThisProcessS: number | null;
  leader: boolean;
  /** null when Redis did not answer. */
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
    let outbox: HealthReport['outbox'] = null;
    try {
      redis.pingMs = Math.round((await this.redis.ping(this.pingTimeoutMs)) * 100) / 100;
      const [last, ob] = await Promise.all([this.bounded(this.redis.lastCommitted()), this.bounded(this.redis.outboxStats())]);
      redis.answers = true;
      lastCommitMs = last;
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
        reasons.push(`no period committed for ${this.stalePeriods} flush intervals (${(this.stalePeriods * interval) / 1000} s); last committed period: ${last}`);
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
    return {
      status: reasons.length === 0 ? 'up' : 'down',
      reasons,
      operatorStatus: this.operatorStatus,
      checkedAtMs: now,
      redis,
      lastCommit: { boundaryMs: lastCommitMs, ageMs: lastCommitMs === null ? null : now - lastCommitMs },
      lastCommittedByThisProcessS: byThis > 0 ? byThis : null,
      leader: this.flush?.leader ?? false,
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

  /** A Redis read that answered the PING may still hang: give it the same bound. */
  private bounded<T>(p: Promise<T>): Promise<T> {
    p.catch(() => undefined);
    return withTimeout(p, this.pingTimeoutMs, `no reply within ${this.pingTimeoutMs} ms`);
  }
}
