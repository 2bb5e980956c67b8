/**
 * GET /api/history: this process's own figures over the last hour, an
 * in-memory ring of fixed size (POINTS samples, one every stepMs) on the
 * main thread. The first sample is taken at start, so a fresh process has a
 * point at once (its rates are null: there is no earlier sample to take a
 * difference from). A sample costs one HealthReport (a PING and two small
 * Redis reads, bounded by the health timeouts); a sample still running when
 * the next is due is not doubled, the next one is skipped.
 */
import type { HealthReport } from '../observability/health.js';

export const HISTORY_SERIES = [
  'received_per_s', 'bad_lines_per_s', 'dropped_per_s', 'udp_kernel_drops_per_s', 'flush_time_ms', 'timestamp_lag_s',
  'outbox_bytes', 'outbox_oldest_age_s', 'batches_waiting', 'leader',
] as const;
export type HistorySeries = (typeof HISTORY_SERIES)[number];

/** Running totals at one moment (each only grows), from which the *_per_s series are taken. */
export interface Totals {
  received: number;
  badLines: number;
  dropped: number;
  udpKernelDrops: number;
}

export interface SampleSource {
  totals(): Totals;
  /** Flush facts mirrored from the flush thread. */
  flushTimeMs(): number | null;
  timestampLagS(): number | null;
  report(): Promise<HealthReport>;
}

export interface HistoryAnswer {
  stepMs: number;
  /** unix ms of each sample, oldest first. */
  t: number[];
  series: Record<HistorySeries, Array<number | null>>;
}

export const DEFAULT_STEP_MS = 10_000;
/** One hour at the default step. */
export const POINTS = 360;

const round = (v: number, digits = 3): number => Math.round(v * 10 ** digits) / 10 ** digits;

export class SelfHistory {
  private readonly t: number[] = [];
  private readonly series = Object.fromEntries(HISTORY_SERIES.map((k) => [k, [] as Array<number | null>])) as Record<HistorySeries, Array<number | null>>;
  private prev: { atMs: number; totals: Totals } | null = null;
  private timer: NodeJS.Timeout | null = null;
  private sampling = false;

  constructor(
    private readonly source: SampleSource,
    readonly stepMs = DEFAULT_STEP_MS,
    private readonly now: () => number = Date.now,
  ) {}

  /** Takes the first sample now, then one every stepMs. */
  start(): Promise<void> {
    this.timer = setInterval(() => void this.sample(), this.stepMs);
    this.timer.unref();
    return this.sample();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
  }

  async sample(): Promise<void> {
    if (this.sampling) return;
    this.sampling = true;
    try {
      const atMs = this.now();
      const totals = this.source.totals();
      const report = await this.source.report();
      const prev = this.prev;
      const spanS = prev ? (atMs - prev.atMs) / 1000 : 0;
      const rate = (k: keyof Totals): number | null => (prev && spanS > 0 ? round(Math.max(0, totals[k] - prev.totals[k]) / spanS) : null);
      this.push(atMs, {
        received_per_s: rate('received'),
        bad_lines_per_s: rate('badLines'),
        dropped_per_s: rate('dropped'),
        udp_kernel_drops_per_s: rate('udpKernelDrops'),
        flush_time_ms: this.source.flushTimeMs(),
        timestamp_lag_s: this.source.timestampLagS(),
        outbox_bytes: report.outbox?.bytes ?? null,
        outbox_oldest_age_s: report.outbox ? round((report.outbox.oldestAgeMs ?? 0) / 1000, 1) : null,
        batches_waiting: report.batchesWaiting,
        leader: report.leader ? 1 : 0,
      });
      this.prev = { atMs, totals };
    } finally {
      this.sampling = false;
    }
  }

  private push(atMs: number, values: Record<HistorySeries, number | null>): void {
    this.t.push(atMs);
    if (this.t.length > POINTS) this.t.shift();
    for (const k of HISTORY_SERIES) {
      const s = this.series[k];
      s.push(values[k]);
      if (s.length > POINTS) s.shift();
    }
  }

  answer(): HistoryAnswer {
    const series = Object.fromEntries(HISTORY_SERIES.map((k) => [k, [...this.series[k]]])) as Record<HistorySeries, Array<number | null>>;
    return { stepMs: this.stepMs, t: [...this.t], series };
  }
}
