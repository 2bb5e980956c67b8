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
import { chunkLines } from '../sink/graphite/chunk.js';
import { encodePeriod } from '../sink/graphite/encode.js';
import type { Store } from '../store/store.js';
import { buildPeriod } from './build-period.js';
import { nextBoundary, systemClock, type Clock } from './clock.js';

export type FlushConfig = Omit<Config, 'servers' | 'source' | 'redis' | 'log'>;

export class Flusher {
  readonly token = randomUUID();
  private leader = false;
  private boundaryTimer: NodeJS.Timeout | null = null;
  private leaseTimer: NodeJS.Timeout | null = null;
  private processing: Promise<void> | null = null;
  private again = false;
  private stopped = false;
  private readonly errLog: RateLimitedLog;
  /** Periods committed by this process (tests and /health). */
  periodsCommitted = 0;
  lastCommittedTs = 0;

  constructor(
    private readonly store: Store,
    private readonly cfg: FlushConfig,
    private readonly self: SelfStats,
    private readonly log: Logger,
    private readonly onCommitted: () => void = () => {},
    private readonly clock: Clock = systemClock,
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
    if (this.processing) await this.processing;
    if (this.leader) {
      this.leader = false;
      await this.store.releaseLease(this.token).catch(() => undefined);
    }
  }

  private async checkLease(): Promise<void> {
    try {
      const was = this.leader;
      this.leader = await this.store.tryAcquireLease(this.token, this.cfg.leaseTtl);
      if (this.leader && !was) {
        this.log.info({ token: this.token }, 'became the flushing leader');
        this.kickProcessing();
      } else if (!this.leader && was) {
        this.log.warn('lost the leader lease');
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
        if (!this.leader) return;
        await this.processOne(ts);
      }
    } catch (err) {
      this.errLog.warn(() => ({ msg: 'processing a pending period failed; retried next flush', fields: { err: (err as Error).message } }));
    }
  }

  private async processOne(boundaryMs: number): Promise<void> {
    const cfg = this.cfg;
    const [raw, known, ttls] = await Promise.all([
      this.store.readPeriod(boundaryMs),
      this.store.readKnown(),
      cfg.deleteGauges ? this.store.readGaugeTtl() : Promise.resolve({} as Record<string, string>),
    ]);
    const started = Date.now();
    const ts = Math.round(boundaryMs / 1000);
    const lag = Math.round(started / 1000) - ts;
    const { data, newKnown } = buildPeriod(raw, known, cfg, [[`${cfg.prefixStats}.timestamp_lag`, lag]]);
    const { lines } = encodePeriod(data, ts, { processingTime: Date.now() - started, graphite: { ...this.self.graphite } }, cfg);

    const gaugeTtl: Array<[string, number]> = [];
    const gaugeDeletes: string[] = [];
    if (cfg.deleteGauges) {
      for (const name of Object.keys(raw.gauges)) {
        const left = (name in raw.gaugesTouched ? cfg.gaugesMaxTTL : Number(ttls[name] ?? cfg.gaugesMaxTTL)) - 1;
        if (left < 1) gaugeDeletes.push(name);
        else gaugeTtl.push([name, left]);
      }
    }
    const chunks = cfg.graphiteHost ? chunkLines(lines) : [];
    const res = await this.store.commit(this.token, boundaryMs, {
      chunks,
      known: newKnown,
      gaugeTtl,
      gaugeDeletes,
      outboxMax: cfg.outboxMaxChunks,
    });
    if (res.status === -1) {
      this.leader = false;
      this.log.warn({ ts }, 'commit refused: the lease is no longer ours');
      return;
    }
    if (res.dropped > 0) {
      this.self.outboxDropped += res.dropped;
      this.errLog.warn(() => ({
        msg: 'outbox full (carbon unreachable too long): dropped the oldest chunks',
        fields: { dropped: res.dropped, outboxMaxChunks: cfg.outboxMaxChunks, outboxDropped: this.self.outboxDropped },
      }));
    }
    if (res.status === 1) {
      this.periodsCommitted++;
      this.lastCommittedTs = ts;
      this.log.debug({ ts, lines: lines.length, chunks: chunks.length }, 'period committed');
      this.onCommitted();
    }
  }
}
