/**
 * One set of self-metrics per period for the whole fleet (issue 11,
 * deliverable 4). With S > 1 shards every shard's commit records its
 * period's numStats and processing ms in its own `fleet` hash
 * and the values of statsd's own three counters (bad_lines_seen,
 * packets_received, metrics_received) in its own `fleet` hash
 * (commitPeriod-14) and emits none of them; shard 0's leader, before
 * processing period P, waits until every other shard committed P or later,
 * then adds their records for P to its own: it alone emits numStats,
 * calculationtime, processing_time, the graphiteStats lines, timestamp_lag
 * (its own lag: it starts last) and the three counters (summed: wherever a
 * process merged them, each appears once, and an idle fleet still emits
 * their 0). A shard that skipped P (an empty catch-up) has no record and
 * counts 0. With one shard nothing waits and nothing is added: the output
 * is statsd's.
 */
import type { Clock } from '../clock.js';
import type { Logger } from '../observability/logger.js';
import { RateLimitedLog } from '../observability/rate-limited-log.js';
import type { Store } from '../store/store.js';
import { internalCounterNames } from './build-period.js';

/** While another shard has not committed the period yet, ask again this often. */
const POLL_MS = 100;
/** Waiting longer than this (and than a flushInterval) is logged, rate-limited. */
const WARN_AFTER_MS = 5000;

export interface FleetTotals {
  numStats: number;
  processingMs: number;
  /** statsd's own counters, in internalCounterNames order. */
  counters: number[];
}

export class FleetStats {
  private readonly waitLog: RateLimitedLog;

  constructor(
    private readonly store: Pick<Store, 'shard' | 'shards'>,
    log: Logger,
    private readonly clock: Clock,
  ) {
    this.waitLog = new RateLimitedLog(log, 10_000);
  }

  /** Whether this shard's periods carry the self-metrics: with one shard, or on shard 0 of several. */
  get emitsSelfMetrics(): boolean {
    return this.store.shards.length === 1 || this.store.shard === 0;
  }

  /**
   * With several shards: takes statsd's own counters out of a shard's counters (not shard 0), or adds the
   * others' values to shard 0's (others, from othersOf). Returns this shard's own values, for its record.
   */
  takeCounters(counters: Map<string, number>, prefixStats: string, others: FleetTotals | null): number[] {
    if (this.store.shards.length === 1) return [];
    const names = internalCounterNames(prefixStats);
    const own = names.map((n) => counters.get(n) ?? 0);
    names.forEach((n, i) => {
      if (!this.emitsSelfMetrics) counters.delete(n);
      else if (others) counters.set(n, (own[i] ?? 0) + (others.counters[i] ?? 0));
    });
    return own;
  }

  /** Whether this shard adds the other shards' records to its own (shard 0 of several). */
  get sumsOthers(): boolean {
    return this.store.shards.length > 1 && this.store.shard === 0;
  }

  /**
   * The other shards' totals for the period at boundaryMs, once each of them committed it or a
   * later one; null when keepWaiting() turned false first (lost the lease, stopping). flushIntervalMs
   * only sets when a long wait is logged.
   */
  async othersOf(boundaryMs: number, flushIntervalMs: number, keepWaiting: () => boolean): Promise<FleetTotals | null> {
    const others = this.store.shards.filter((s) => s.shard !== this.store.shard);
    const started = this.clock.now();
    let behind = others;
    for (;;) {
      const last = await Promise.all(behind.map((s) => s.lastCommitted()));
      behind = behind.filter((_, i) => (last[i] ?? -Infinity) < boundaryMs);
      if (behind.length === 0) break;
      if (!keepWaiting()) return null;
      const waitedMs = this.clock.now() - started;
      if (waitedMs > Math.max(WARN_AFTER_MS, flushIntervalMs)) {
        this.waitLog.warn(() => ({
          msg: "shard 0 waits for other shards to commit a period before emitting the fleet's self-metrics for it",
          fields: { boundaryMs, waitedMs, shards: behind.map((s) => s.shard) },
        }));
      }
      await new Promise<void>((resolve) => this.clock.setTimeout(resolve, POLL_MS));
    }
    const records = await Promise.all(others.map((s) => s.fleetRecord(boundaryMs)));
    const total: FleetTotals = { numStats: 0, processingMs: 0, counters: [] };
    for (const r of records) {
      if (r === null) continue;
      total.numStats += r.numStats;
      total.processingMs += r.processingMs;
      r.counters.forEach((v, i) => (total.counters[i] = (total.counters[i] ?? 0) + v));
    }
    return total;
  }
}
