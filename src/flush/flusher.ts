/**
 * The leader's loop. Every process runs one; the one holding the lease
 * rotates the current period at each wall-clock multiple of flushInterval,
 * then processes every pending period oldest first: read -> compute/encode ->
 * commit (outbox chunks + bookkeeping, one fenced script). A crash between
 * rotate and commit leaves the period pending, and the next leader emits the
 * same lines for it (DESIGN invariants 3 and 4).
 */
import { randomUUID } from 'node:crypto';
import type { Config } from '../config/types.js';
import type { Logger } from '../observability/logger.js';
import { RateLimitedLog } from '../observability/rate-limited-log.js';
import type { SelfStats } from '../observability/self-stats.js';
import { KNOWN_TYPES, type KnownType } from '../store/keys.js';
import type { Store } from '../store/store.js';
import { buildPeriodSliced } from './build-period.js';
import { nextBoundary, systemClock, type Clock } from './clock.js';
import type { ComputedPeriod } from './computed-period.js';
import type { PeriodSink } from './period-sink.js';
import { runSliced } from './slices.js';

export type FlushConfig = Omit<Config, 'servers' | 'source' | 'redis' | 'log'>;

/** Wall time of each step of processing one period, ms. */
export interface FlushStages {
  read: number;
  build: number;
  remember: number;
  encode: number;
  commit: number;
}

export class Flusher {
  readonly token = randomUUID();
  private leader = false;
  /** When the last successful lease check was sent (ms). */
  private renewedAt = 0;
  private boundaryTimer: NodeJS.Timeout | null = null;
  private leaseTimer: NodeJS.Timeout | null = null;
  private processing: Promise<void> | null = null;
  private leaseCheck: Promise<void> | null = null;
  private again = false;
  private stopped = false;
  private readonly errLog: RateLimitedLog;
  /**
   * The leader's copy of known:* (a million names are ~0.5 s to scan each
   * flush). Only the leader adds names, and deletions bump known_version, so
   * it is re-read when that changes and whenever this process becomes the
   * leader again.
   */
  private known: { version: string; names: Record<KnownType, Set<string>> } | null = null;
  /** Periods committed by this process (tests and /health). */
  periodsCommitted = 0;
  lastCommittedTs = 0;
  /** Where the last committed period's time went, ms per stage (debug log, bench/flush-profile.ts). */
  lastStages: FlushStages | null = null;

  constructor(
    private readonly store: Store,
    private readonly cfg: FlushConfig,
    private readonly self: SelfStats,
    private readonly log: Logger,
    private readonly onCommitted: () => void = () => {},
    private readonly clock: Clock = systemClock,
    /** Backends each committed period goes to (flush-thread.ts builds them). */
    private readonly sinks: readonly PeriodSink[] = [],
  ) {
    this.errLog = new RateLimitedLog(log, 5000);
  }

  get isLeader(): boolean {
    return this.leader;
  }

  async start(): Promise<void> {
    await this.checkLease();
    this.scheduleBoundary();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.boundaryTimer) this.clock.clearTimeout(this.boundaryTimer);
    if (this.leaseTimer) this.clock.clearTimeout(this.leaseTimer);
    // A lease check in flight must not re-take the lease after the release below.
    if (this.leaseCheck) await this.leaseCheck;
    if (this.processing) await this.processing;
    if (this.leader) {
      this.leader = false;
      await this.store.releaseLease(this.token).catch(() => undefined);
    }
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
      const asked = Date.now();
      this.leader = await this.store.tryAcquireLease(this.token, this.cfg.leaseTtl);
      if (this.leader) this.renewedAt = asked;
      if (!this.leader) this.known = null;
      if (this.leader && !was) {
        this.log.info({ token: this.token }, 'became the flushing leader');
        this.kickProcessing();
      } else if (!this.leader && was) {
        const holder = await this.store.leaseHolder().catch(() => null);
        this.log.warn({ holder, sinceRenewalMs: Date.now() - this.renewedAt, leaseTtl: this.cfg.leaseTtl }, 'lost the leader lease');
      }
    } catch (err) {
      // Can't renew: behave as a follower until Redis answers again.
      this.leader = false;
      this.errLog.warn(() => ({ msg: 'lease check failed', fields: { err: (err as Error).message } }));
    }
    if (!this.stopped) this.leaseTimer = this.clock.setTimeout(() => void this.checkLease(), Math.max(100, Math.floor(this.cfg.leaseTtl / 3)));
  }

  private scheduleBoundary(): void {
    if (this.stopped) return;
    const now = this.clock.now();
    const b = nextBoundary(now, this.cfg.flushInterval);
    this.boundaryTimer = this.clock.setTimeout(() => void this.onBoundary(b), b - now);
  }

  private async onBoundary(boundary: number): Promise<void> {
    this.scheduleBoundary();
    if (!this.leader) return;
    try {
      const r = await this.store.rotate(this.token, boundary);
      if (r === -1) {
        this.leader = false;
        this.log.warn({ boundary }, 'rotate refused: the lease is no longer ours');
        return;
      }
    } catch (err) {
      this.errLog.warn(() => ({ msg: 'rotate failed; the period stays open', fields: { err: (err as Error).message } }));
      return;
    }
    this.kickProcessing();
  }

  /** Process pending periods; if already running, run once more afterwards. */
  kickProcessing(): Promise<void> {
    if (this.stopped) return this.processing ?? Promise.resolve();
    if (this.processing) {
      this.again = true;
      return this.processing;
    }
    this.processing = (async () => {
      do {
        this.again = false;
        await this.processPending();
      } while (this.again && this.leader && !this.stopped);
    })().finally(() => {
      this.processing = null;
    });
    return this.processing;
  }

  private async processPending(): Promise<void> {
    try {
      for (const ts of await this.store.pendingPeriods()) {
        if (!this.leader || this.stopped) return;
        await this.processOne(ts);
      }
    } catch (err) {
      this.errLog.warn(() => ({ msg: 'processing a pending period failed; retried next flush', fields: { err: (err as Error).message } }));
    }
  }

  private async knownNames(): Promise<Record<KnownType, Set<string>>> {
    const version = await this.store.knownVersion();
    if (this.known?.version !== version) {
      const lists = await this.store.readKnown();
      this.known = { version, names: { counters: new Set(lists.counters), timers: new Set(lists.timers), sets: new Set(lists.sets) } };
    }
    return this.known.names;
  }

  /**
   * read (HSCAN) -> build -> remember new names -> each sink encodes the
   * computed period (outbox chunks) -> commit -> each sink hears of it.
   * Build and encode run in slices (slices.ts), so even a period with a
   * million names leaves this thread free every few ms to renew the lease.
   */
  private async processOne(boundaryMs: number): Promise<void> {
    const cfg = this.cfg;
    const t0 = performance.now();
    const [raw, known, ttls] = await Promise.all([
      this.store.readPeriod(boundaryMs),
      this.knownNames(),
      cfg.deleteGauges ? this.store.readGaugeTtl() : Promise.resolve({} as Record<string, string>),
    ]);
    const t1 = performance.now();
    const started = Date.now();
    const ts = Math.round(boundaryMs / 1000);
    const lag = Math.round(started / 1000) - ts;
    const built = await runSliced(buildPeriodSliced(raw, known, cfg, [[`${cfg.prefixStats}.timestamp_lag`, lag]]));
    const { data, newKnown } = built.value;
    if (!this.leader) return;
    const t2 = performance.now();
    await this.store.rememberKnown(newKnown);
    for (const t of KNOWN_TYPES) for (const name of newKnown[t]) known[t].add(name);
    const t3 = performance.now();
    const period: ComputedPeriod = { timestampS: ts, data, processingTimeMs: built.busyMs, setFields: raw.sets };
    const chunks: string[] = [];
    for (const sink of this.sinks) for (const c of await sink.encode(period)) chunks.push(c);
    const t4 = performance.now();

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
    });
    if (res.status === -1) {
      this.leader = false;
      this.known = null;
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
      const t5 = performance.now();
      const ms = (a: number, b: number) => Math.round(b - a);
      this.lastStages = { read: ms(t0, t1), build: ms(t1, t2), remember: ms(t2, t3), encode: ms(t3, t4), commit: ms(t4, t5) };
      this.periodsCommitted++;
      this.lastCommittedTs = ts;
      this.log.debug({ ts, chunks: chunks.length, stagesMs: this.lastStages }, 'period committed');
      for (const sink of this.sinks) sink.committed(period);
      this.onCommitted();
    }
  }
}
