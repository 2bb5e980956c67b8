/**
 * The leader's loop. Every process runs one; the one holding the lease
 * closes each period once it is over and every live member has merged its
 * samples of it (closePeriod-8: members report watermarks with each merge),
 * one period at a time, in order, so a failover or an outage delays periods
 * but never folds two into one. Then it processes every closed (pending)
 * period oldest first: read -> build -> compute -> encode -> commit (outbox chunks +
 * bookkeeping, one fenced script). A crash between close and commit leaves
 * the period pending, and the next leader emits the same lines for it
 * (DESIGN invariants 3, 4 and 7).
 */
import { randomUUID } from 'node:crypto';
import type { Config } from '../config/types.js';
import type { Logger } from '../observability/logger.js';
import { RateLimitedLog } from '../observability/rate-limited-log.js';
import type { SelfStats } from '../observability/self-stats.js';
import type { Store } from '../store/store.js';
import { partsBudget, shardBound, type MergeBound } from '../store/bound.js';
import { buildPeriodSliced } from './build-period.js';
import { KnownNames } from './known-names.js';
import { computeMetricsSliced } from './compute-period.js';
import { nextBoundary, systemClock, type Clock } from '../clock.js';
import type { ComputedPeriod } from './computed-period.js';
import type { PeriodSink } from './period-sink.js';
import type { LeaseGate } from './shard-leases.js';
import { runSliced } from './slices.js';
import { FleetStats } from './fleet-stats.js';
import { CompactSchedule } from './compact-parts.js';
import { Steadiness } from './steadiness.js';

export type FlushConfig = Omit<Config, 'servers' | 'source' | 'redis' | 'log'>;

/** Wall time of each step of processing one period, ms. */
export interface FlushStages {
  read: number;
  build: number;
  compute: number;
  remember: number;
  encode: number;
  commit: number;
}

/** After a period's boundary, when the leader first tries to close it: members seal and merge at the boundary. */
const CLOSE_GRACE_MS = 50;
/** While a live member still holds samples of the next period, ask again this often. */
const CLOSE_POLL_MS = 100;
/** Empty periods closed one by one after an outage of the whole fleet; further behind, empty ones are skipped. */
const MAX_EMPTY_CATCH_UP = 6;
/** Answers "not the next period" (another process closed it meanwhile) taken at once before waiting a poll. */
const MAX_RETRIES = 2;

/** What a Flusher is told beyond the defaults (flush-thread.ts runs one per shard). */
export interface FlusherOptions {
  /** The lease token; one per flush thread, shared by its shards' flushers. Default: a new UUID. */
  readonly token?: string;
  /**
   * Rendezvous ranking (shard-leases.ts): with one, the lease is taken only when this process is
   * preferred for the shard, or when it has been free for a full leaseTtl, and handed over when no
   * longer preferred. Without (one shard, tests), any process takes a free lease and keeps it.
   */
  readonly gate?: LeaseGate;
}

export class Flusher {
  readonly token: string;
  private leader = false;
  /**
   * Leading a shard another process is now preferred for, and waiting for an idle moment to hand it over: no new
   * close or processing starts meanwhile, so the moment comes at the next lease check even when every period keeps
   * this flusher busy (a loaded machine).
   */
  private handingOver = false;
  /** Since when (ms) a lease check of a process not preferred for the shard found the lease free; null when held. */
  private freeSince: number | null = null;
  /** closeForStop's deadline: a wait for the other shards (fleet-stats.ts) gives up past it. */
  private stopDeadlineMs = Infinity;
  private readonly fleet: FleetStats;
  /** When the last successful lease check was sent (ms). */
  private renewedAt = 0;
  /** Whether the shard's Redis has answered this flusher steadily, and since when (closePeriod-8's verdict on members). */
  private readonly steady: Steadiness;
  private closeTimer: NodeJS.Timeout | null = null;
  private leaseTimer: NodeJS.Timeout | null = null;
  private compactTimer: NodeJS.Timeout | null = null;
  private compacting: Promise<void> | null = null;
  private readonly compactSchedule: CompactSchedule;
  private closing: Promise<void> | null = null;
  private processing: Promise<void> | null = null;
  private leaseCheck: Promise<void> | null = null;
  private again = false;
  /** No more periodic closes (stopping); closeForStop still closes. */
  private stopped = false;
  /** The lease timer is off and the lease released. */
  private released = false;
  private readonly errLog: RateLimitedLog;
  private readonly waitLog: RateLimitedLog;
  private readonly boundLog: RateLimitedLog;
  /** This shard's share of maxNamesPerPeriod, applied by the fold (store.readPeriod) to counters, timers and sets. */
  private readonly bound: MergeBound;
  /** The leader's copy of the known names, their last-seen times, and forgetIdleAfter (known-names.ts). */
  private readonly known: KnownNames;
  /**
   * Whether a period was ever committed on this prefix before the one being
   * processed: statsd emits timestamp_lag from its second flush on, so the
   * very first period of a prefix has none (and numStats one less).
   */
  private committedBefore = false;
  /** Periods committed by this process (tests and /health). */
  periodsCommitted = 0;
  lastCommittedTs = 0;
  /** Where the last committed period's time went, ms per stage (debug log, bench/micro/flush-profile.ts). */
  lastStages: FlushStages | null = null;

  constructor(
    private readonly store: Store,
    private readonly cfg: FlushConfig,
    private readonly self: SelfStats,
    private readonly log: Logger,
    private readonly onCommitted: () => void = () => {},
    private readonly clock: Clock = systemClock,
    /** Backends each committed period goes to (src/flush-thread.ts builds them). */
    private readonly sinks: readonly PeriodSink[] = [],
    private readonly opts: FlusherOptions = {},
  ) {
    this.token = opts.token ?? randomUUID();
    this.steady = new Steadiness(cfg.leaseTtl, clock);
    this.fleet = new FleetStats(store, log, clock);
    this.errLog = new RateLimitedLog(log, 5000);
    this.waitLog = new RateLimitedLog(log, 5000);
    this.boundLog = new RateLimitedLog(log);
    this.bound = shardBound(cfg.maxNamesPerPeriod, store.shards.length, cfg.prefixStats);
    this.compactSchedule = new CompactSchedule(partsBudget(this.bound.maxNames));
    this.known = new KnownNames(store, cfg.forgetIdleAfter, self, log);
  }

  get isLeader(): boolean {
    return this.leader;
  }

  /** The shard this flusher leads (or may lead). */
  get shard(): number {
    return this.store.shard;
  }

  async start(): Promise<void> {
    await this.checkLease();
    this.scheduleClose(0);
    this.scheduleCompact();
  }

  /**
   * A clean stop's flushing: no more periodic closes; as leader, close and
   * commit every period that is due, before deadlineMs. The unfinished
   * period stays open in Redis: a tallyd that starts (or runs) on the prefix
   * merges into it and publishes it whole, under its own timestamp. The
   * lease stays held (and renewed) so the sink can drain; release it with
   * stop().
   */
  async closeForStop(deadlineMs: number): Promise<void> {
    this.stopped = true;
    this.stopDeadlineMs = deadlineMs;
    if (this.closeTimer) this.clock.clearTimeout(this.closeTimer);
    if (this.closing) await this.closing;
    let retries = 0;
    while (this.leader && this.clock.now() < deadlineMs) {
      const r = await this.closeStep(true).catch((err: unknown) => {
        this.errLog.warn(() => ({ msg: 'closing a period at stop failed', fields: { err: (err as Error).message } }));
        return 'failed' as const;
      });
      if (r === 'closed') {
        retries = 0;
        continue;
      }
      if (r === 'retry' && ++retries <= MAX_RETRIES) continue;
      if (r !== 'waiting') break;
      await new Promise<void>((resolve) => this.clock.setTimeout(resolve, CLOSE_POLL_MS));
    }
    if (this.processing) await this.processing;
  }

  /** Stops everything and releases the lease (after closeForStop and the sink's drain, on a clean stop). */
  async stop(): Promise<void> {
    this.stopped = true;
    this.released = true;
    if (this.closeTimer) this.clock.clearTimeout(this.closeTimer);
    if (this.leaseTimer) this.clock.clearTimeout(this.leaseTimer);
    if (this.compactTimer) this.clock.clearTimeout(this.compactTimer);
    // A lease check in flight must not re-take the lease after the release below.
    if (this.leaseCheck) await this.leaseCheck;
    if (this.compacting) await this.compacting;
    if (this.closing) await this.closing;
    if (this.processing) await this.processing;
    if (this.leader) {
      this.leader = false;
      await this.store.releaseLease(this.token).catch(() => undefined);
    }
  }

  /**
   * Nothing of the shard is being closed, processed or written to Carbon: the lease can go without a line sent twice.
   * A compaction in flight does not count: the next leader's, if it comes between, is refused as raced (no harm), and
   * waiting for it too made handovers under traffic rare (a flusher looks at its parts every fifth of flushInterval).
   */
  private idleForHandover(): boolean {
    return !this.processing && !this.closing && !this.sinks.some((s) => s.busy?.() ?? false);
  }

  /**
   * Asks Redis for the lease, if this process may hold it: always without a gate; with one, when
   * preferred for the shard, when already holding it and still busy with a period or its delivery (handed over once
   * idle), or when it has been free for a full leaseTtl (a preferred process that is wedged).
   * Returns whether this process holds the lease now.
   */
  private async askLease(asked: number): Promise<boolean> {
    const gate = this.opts.gate;
    if (!gate || gate.prefers(this.store.shard)) {
      this.freeSince = null;
      this.handingOver = false;
      return await this.tryLease();
    }
    if (this.leader) {
      if (!this.idleForHandover()) {
        this.handingOver = true;
        return await this.tryLease();
      }
      this.handingOver = false;
      // Handover: no longer first for the shard and idle. Not the leader from here on (nothing starts a close or a
      // commit), then the lease goes; the preferred process takes it at its next check.
      this.leader = false;
      this.known.reset();
      await this.store.releaseLease(this.token);
      this.log.info({ token: this.token }, 'handed the shard over to the process now preferred for it');
      return false;
    }
    const holder = await this.steady.track(() => this.store.leaseHolder());
    if (holder !== null) {
      this.freeSince = null;
      return false;
    }
    this.freeSince ??= asked;
    if (asked - this.freeSince < this.cfg.leaseTtl) return false;
    const got = await this.tryLease();
    if (got) this.log.warn({ freeMs: asked - this.freeSince }, 'took a shard whose preferred process left its lease free for a full leaseTtl');
    this.freeSince = null;
    return got;
  }

  /** Takes or renews the lease (a small command: its answer counts toward the shard's steadiness). */
  private async tryLease(): Promise<boolean> {
    return (await this.steady.track(() => this.store.tryAcquireLease(this.token, this.cfg.leaseTtl))) > 0;
  }

  private checkLease(): Promise<void> {
    this.leaseCheck = this.doCheckLease().finally(() => {
      this.leaseCheck = null;
    });
    return this.leaseCheck;
  }

  private async doCheckLease(): Promise<void> {
    try {
      const was = this.leader;
      const asked = this.clock.now();
      const handover = this.opts.gate !== undefined && was && !this.opts.gate.prefers(this.store.shard) && this.idleForHandover();
      this.leader = await this.askLease(asked);
      if (this.leader) this.renewedAt = asked;
      if (!this.leader) {
        this.known.reset();
        this.handingOver = false;
      }
      if (this.leader && !was) {
        this.log.info({ token: this.token }, 'became the flushing leader');
        this.kickProcessing();
        this.scheduleClose(0);
      } else if (!this.leader && was && !handover) {
        const holder = await this.store.leaseHolder().catch(() => null);
        this.log.warn({ holder, sinceRenewalMs: this.clock.now() - this.renewedAt, leaseTtl: this.cfg.leaseTtl }, 'lost the leader lease');
      }
    } catch (err) {
      // Can't renew: behave as a follower until Redis answers again.
      this.leader = false;
      this.handingOver = false;
      this.errLog.warn(() => ({ msg: 'lease check failed', fields: { err: (err as Error).message } }));
    }
    if (!this.released) this.leaseTimer = this.clock.setTimeout(() => void this.checkLease(), Math.max(100, Math.floor(this.cfg.leaseTtl / 3)));
  }

  /** Every compactEvery ms (a fifth of flushInterval, 100 ms to 1 s), the leader looks at its open periods' parts. */
  private scheduleCompact(): void {
    if (this.stopped) return;
    const every = Math.max(100, Math.min(1000, Math.floor(this.cfg.flushInterval / 5)));
    this.compactTimer = this.clock.setTimeout(() => {
      this.compactTimer = null;
      if (this.leader && !this.stopped && !this.compacting) {
        this.compacting = this.compactOpen()
          .catch((err: unknown) => this.errLog.warn(() => ({ msg: 'compacting an open period failed; tried again later', fields: { err: (err as Error).message } })))
          .finally(() => {
            this.compacting = null;
          });
      }
      this.scheduleCompact();
    }, every);
  }

  /** Compacts the open periods whose parts grew past their mark (CompactSchedule, flush/compact-parts.ts). */
  private async compactOpen(): Promise<void> {
    const open = await this.store.openPartsSizes();
    for (const { boundaryMs, bytes } of open) {
      if (!this.leader || this.stopped) return;
      if (!this.compactSchedule.due(boundaryMs, bytes)) continue;
      const r = await this.store.compactPeriod(boundaryMs);
      this.compactSchedule.done(boundaryMs, r);
      if (r.status === 'compacted') this.log.debug({ boundaryMs, ...r }, "compacted an open period's parts");
    }
    this.compactSchedule.keep(open.map((o) => o.boundaryMs));
  }

  private scheduleClose(delayMs: number): void {
    if (this.stopped) return;
    if (this.closeTimer) this.clock.clearTimeout(this.closeTimer);
    this.closeTimer = this.clock.setTimeout(() => {
      this.closeTimer = null;
      if (this.closing) return;
      this.closing = this.closeDue().finally(() => {
        this.closing = null;
      });
    }, Math.max(0, delayMs));
  }

  /** Closes every period that is due and ready; then sleeps until the next one is due, or polls while one waits. */
  private async closeDue(): Promise<void> {
    const interval = this.cfg.flushInterval;
    let retries = 0;
    for (let guard = 0; guard < 1000 && this.leader && !this.stopped; guard++) {
      if (this.handingOver) {
        this.scheduleClose(CLOSE_POLL_MS);
        return;
      }
      let r: Awaited<ReturnType<Flusher['closeStep']>>;
      try {
        r = await this.closeStep(false);
      } catch (err) {
        this.errLog.warn(() => ({ msg: 'closing a period failed; retried', fields: { err: (err as Error).message } }));
        this.scheduleClose(CLOSE_POLL_MS * 5);
        return;
      }
      if (r === 'closed') {
        retries = 0;
        continue;
      }
      if (r === 'retry' && ++retries <= MAX_RETRIES) continue;
      if (r === 'waiting' || r === 'retry' || r === 'pending') {
        this.scheduleClose(r === 'pending' ? CLOSE_POLL_MS * 5 : CLOSE_POLL_MS);
        return;
      }
      if (r === 'not-leader') return;
      // not due: wake at the next boundary (plus a grace for members to seal and merge)
      const now = this.clock.now();
      this.scheduleClose(nextBoundary(now, interval) - now + CLOSE_GRACE_MS);
      return;
    }
    const now = this.clock.now();
    this.scheduleClose(nextBoundary(now, interval) - now + CLOSE_GRACE_MS);
  }

  /**
   * One step of closing, strictly alternating with committing: first every
   * closed period is committed (one that fails stays pending, and nothing
   * more is closed until it is committed: a commit's gauge deletions must
   * not undo a later period's gauges), then the next period is closed and
   * committed.
   */
  private async closeStep(stopping: boolean): Promise<'closed' | 'waiting' | 'not-due' | 'not-leader' | 'retry' | 'pending'> {
    await this.kickProcessing(stopping);
    if ((await this.steady.track(() => this.store.pendingPeriods())).length > 0) return 'pending';
    const r = await this.closeNext();
    if (r === 'closed') await this.kickProcessing(stopping);
    return r;
  }

  /**
   * Tries to close the next period if it is over: the one after the last
   * closed, or an open one before it (a period merged under another
   * flushInterval is never stepped over); empty ones skipped when far behind.
   */
  private async closeNext(): Promise<'closed' | 'waiting' | 'not-due' | 'not-leader' | 'retry'> {
    const interval = this.cfg.flushInterval;
    const now = this.clock.now();
    const lastOver = nextBoundary(now, interval) - interval;
    const { closedMs, oldestOpenMs } = await this.steady.track(() => this.store.closeState());
    let next: number;
    if (closedMs === null) {
      next = oldestOpenMs === null ? lastOver : Math.min(oldestOpenMs, lastOver);
    } else {
      next = nextBoundary(closedMs, interval);
      if (oldestOpenMs !== null && oldestOpenMs < next) {
        next = oldestOpenMs;
      } else if (lastOver - next > MAX_EMPTY_CATCH_UP * interval) {
        next = Math.min(oldestOpenMs ?? lastOver, lastOver);
      }
    }
    if (next > lastOver) return 'not-due';
    const sent = this.clock.now();
    const res = await this.steady.track(() => this.store.closePeriod(this.token, next, this.cfg.leaseTtl, this.steady.steadySince(sent), sent));
    if (res.gaveUp !== undefined) {
      // Their unmerged samples, if they ever come, are late: merged into the oldest open period and counted.
      this.log.warn({ boundaryMs: next, members: res.gaveUp, leaseTtl: this.cfg.leaseTtl }, 'gave up on processes that stopped reporting to this shard for a member\'s ttl');
    }
    switch (res.status) {
      case 'closed':
        if (res.clamped) this.self.valuesClamped += res.clamped;
        this.log.debug({ boundaryMs: next }, 'period closed');
        return 'closed';
      case 'not-leader':
        this.leader = false;
        this.known.reset();
        this.log.warn({ boundaryMs: next }, 'close refused: the lease is no longer ours');
        return 'not-leader';
      case 'out-of-order':
        return 'retry';
      case 'waiting':
        if (now - next > this.cfg.leaseTtl) {
          this.waitLog.warn(() => ({
            msg: 'a period waits for a process that has not merged its samples of it yet',
            fields: { boundaryMs: next, member: res.member, memberWatermarkMs: res.watermarkMs, overdueMs: now - next },
          }));
        }
        return 'waiting';
    }
  }

  /** Process pending periods; if already running, run once more afterwards. */
  kickProcessing(evenStopping = false): Promise<void> {
    if (this.released || ((this.stopped || this.handingOver) && !evenStopping)) return this.processing ?? Promise.resolve();
    if (this.processing) {
      this.again = true;
      return this.processing;
    }
    this.processing = (async () => {
      do {
        this.again = false;
        await this.processPending();
      } while (this.again && this.leader && !this.released && (evenStopping || !this.handingOver));
    })().finally(() => {
      this.processing = null;
    });
    return this.processing;
  }

  private async processPending(): Promise<void> {
    try {
      for (const ts of await this.store.pendingPeriods()) {
        if (!this.leader || this.released) return;
        await this.processOne(ts);
      }
    } catch (err) {
      this.errLog.warn(() => ({ msg: 'processing a pending period failed; retried next flush', fields: { err: (err as Error).message } }));
    }
  }

  /**
   * read (HSCAN) -> build -> compute (the statsd maths, once for every
   * sink) -> remember new names -> each sink encodes the computed period
   * (outbox chunks) -> commit -> each sink hears of it. Build, compute and
   * encode run in slices (slices.ts), so even a period with a million names
   * leaves this thread free every few ms to renew the lease.
   */
  private async processOne(boundaryMs: number): Promise<void> {
    const cfg = this.cfg;
    // Shard 0 of several emits the fleet's self-metrics: it starts once every other shard committed the period.
    const others = this.fleet.sumsOthers
      ? await this.fleet.othersOf(boundaryMs, cfg.flushInterval, () => this.leader && !this.released && this.clock.now() < this.stopDeadlineMs)
      : null;
    if (this.fleet.sumsOthers && others === null) return;
    const selfMetrics = this.fleet.emitsSelfMetrics;
    const t0 = performance.now();
    const [raw, known, ttls, lastCommit] = await Promise.all([
      this.store.readPeriod(boundaryMs, this.bound),
      this.known.names(this.clock.now()),
      cfg.deleteGauges ? this.store.readGaugeTtl() : Promise.resolve({} as Record<string, string>),
      this.committedBefore ? Promise.resolve(null) : this.store.lastCommitted(),
    ]);
    if (lastCommit !== null) this.committedBefore = true;
    if (raw.dropped > 0) {
      // The fold refused names past maxNamesPerPeriod (counters, timers, sets; gauges are refused at the merge):
      // counted here, once per part that carried them, and sent with the next batch like every loss counter.
      this.self.namesDropped += raw.dropped;
      this.boundLog.warn(() => ({
        msg: 'a period holds maxNamesPerPeriod distinct names: samples of new names dropped',
        fields: { boundaryMs, maxNamesPerPeriod: cfg.maxNamesPerPeriod, shardShare: this.bound.maxNames, dropped: raw.dropped, examples: raw.droppedExamples.join(' ').slice(0, 200) },
      }));
    }
    const t1 = performance.now();
    const started = this.clock.now();
    const ts = Math.round(boundaryMs / 1000);
    const lag = Math.round(started / 1000) - ts;
    const extraGauges: Array<[string, number]> = this.committedBefore && selfMetrics ? [[`${cfg.prefixStats}.timestamp_lag`, lag]] : [];
    const built = await runSliced(buildPeriodSliced(raw, known, cfg, extraGauges, selfMetrics));
    const { data, newKnown } = built.value;
    // statsd's own counters are fleet self-metrics too: each shard records its values, shard 0 emits the sums.
    // (buildPeriodSliced made the counters a Map of this period's own, read only from here on.)
    const ownCounters = this.fleet.takeCounters(data.counters as Map<string, number>, cfg.prefixStats, others);
    if (!this.leader) return;
    const t2 = performance.now();
    const computed = await runSliced(computeMetricsSliced(data, cfg));
    // statsd's processing_time: from the stored period to the computed values.
    const own = { numStats: computed.value.numStats, processingMs: built.busyMs + computed.busyMs, counters: ownCounters };
    const period: ComputedPeriod = {
      ...computed.value,
      timestampS: ts,
      numStats: own.numStats + (others?.numStats ?? 0),
      processingTimeMs: own.processingMs + (others?.processingMs ?? 0),
      setMembers: raw.sets,
      ...(selfMetrics ? {} : { selfMetrics: false }),
    };
    if (!this.leader) return;
    const t3 = performance.now();
    await this.known.remember(newKnown, raw, this.clock.now());
    const t4 = performance.now();
    const chunks: string[] = [];
    for (const sink of this.sinks) for (const c of await sink.encode(period)) chunks.push(c);
    const t5 = performance.now();

    const gaugeTtl: Array<[string, number]> = [];
    const gaugeDeletes: string[] = [];
    if (cfg.deleteGauges) {
      for (const name of raw.gauges.keys()) {
        const left = (raw.gaugesTouched.has(name) ? cfg.gaugesMaxTTL : Number(ttls[name] ?? cfg.gaugesMaxTTL)) - 1;
        if (left < 1) gaugeDeletes.push(name);
        else gaugeTtl.push([name, left]);
      }
    }
    const res = await this.store.commit(this.token, boundaryMs, {
      chunks,
      gaugeTtl,
      gaugeDeletes,
      outboxMaxBytes: cfg.outboxMaxBytes,
      fleet: own,
    });
    if (res.status === -1) {
      this.leader = false;
      this.known.reset();
      this.log.warn({ ts }, 'commit refused: the lease is no longer ours');
      return;
    }
    if (res.droppedLines > 0 || res.droppedBytes > 0) {
      this.self.outboxDropped += res.droppedLines;
      this.self.outboxDroppedBytes += res.droppedBytes;
      this.errLog.warn(() => ({
        msg: 'outbox full (carbon unreachable too long): dropped the oldest lines not being written',
        fields: { lines: res.droppedLines, bytes: res.droppedBytes, outboxMaxBytes: cfg.outboxMaxBytes, outboxDropped: this.self.outboxDropped },
      }));
    }
    if (res.status === 1) {
      if (period.clamped) this.self.valuesClamped += period.clamped; // once: a period is committed once
      const t6 = performance.now();
      const ms = (a: number, b: number) => Math.round(b - a);
      this.lastStages = { read: ms(t0, t1), build: ms(t1, t2), compute: ms(t2, t3), remember: ms(t3, t4), encode: ms(t4, t5), commit: ms(t5, t6) };
      this.periodsCommitted++;
      this.lastCommittedTs = ts;
      this.log.debug({ ts, chunks: chunks.length, stagesMs: this.lastStages }, 'period committed');
      for (const sink of this.sinks) sink.committed(period);
      this.onCommitted();
      await this.known.sweep(this.token, this.clock.now());
    }
  }
}
