/**
 * A computed period: what flushing hands to the sinks (period-sink.ts), with
 * the statsd maths already done (compute-period.ts, compute.ts), so a sink
 * only names, formats and sends. Per metric kind, parallel per-name arrays in
 * the period's order (statsd's insertion order): a million names are a few
 * arrays, not an object per name or per stat. Names are statsd's keys, tags
 * as `name;k=v`.
 */
import type { TimerStatKey } from './compute.js';

export type { TimerStatKey };

export interface ComputedCounters {
  readonly names: readonly string[];
  /** Sum of value * (1 / rate): statsd's counters (the graphite backend's count line). */
  readonly values: readonly number[];
  /** statsd's counter_rates: value per second of the flush interval. */
  readonly rates: Float64Array;
}

/** Timer i's stats are statKeys/statValues from statStart[i] up to statStart[i + 1]. */
export interface ComputedTimers {
  readonly names: readonly string[];
  /** Each timer's samples, sorted (statsd's metrics.timers, as its console backend prints them). */
  readonly samples: ReadonlyArray<readonly number[]>;
  /** names.length + 1 offsets into statKeys/statValues. */
  readonly statStart: Uint32Array;
  /** statsd's timer_data, flattened in its order, after the calculatedTimerMetrics filter; keys are shared between timers. */
  readonly statKeys: readonly TimerStatKey[];
  readonly statValues: readonly number[];
}

export interface ComputedGauges {
  readonly names: readonly string[];
  readonly values: readonly number[];
}

export interface ComputedSets {
  readonly names: readonly string[];
  /** Distinct members. */
  readonly counts: readonly number[];
}

/** The derived values of a period, as compute-period.ts makes them. */
export interface ComputedMetrics {
  readonly counters: ComputedCounters;
  readonly timers: ComputedTimers;
  /** With statsd's own `<prefixStats>.timestamp_lag` last. */
  readonly gauges: ComputedGauges;
  readonly sets: ComputedSets;
  /** statsd's numStats: counters + timers + gauges + sets. */
  readonly numStats: number;
  /** Timer stats clamped to +-Number.MAX_VALUE (values_clamped); absent when none. */
  readonly clamped?: number;
}

export interface ComputedPeriod extends ComputedMetrics {
  /** The period's boundary, unix seconds: every line of it carries this timestamp. */
  readonly timestampS: number;
  /** ms spent building and computing the period (statsd's processing_time); on shard 0 of several, the fleet's sum. */
  readonly processingTimeMs: number;
  /**
   * false: this shard's period carries no self-metrics (numStats, calculationtime, processing_time,
   * graphiteStats, timestamp_lag): shard 0's leader emits them once for the fleet (flush/fleet-stats.ts).
   */
  readonly selfMetrics?: boolean;
  /** Each set's members, for a sink that prints them (console). */
  readonly setMembers: ReadonlyMap<string, ReadonlySet<string>>;
}
