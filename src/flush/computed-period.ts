/**
 * A computed period: what flushing hands to the sinks (period-sink.ts). The
 * statsd maths stays here in flush/ (compute.ts); a sink only formats and
 * sends. statsdMetrics() is the period as Etsy statsd 0.9 hands it to its
 * backends' 'flush' event (counters, timers, gauges, timer_data,
 * counter_rates, sets, pctThreshold), for the console backend.
 */
import type { Config } from '../config/types.js';
import { computeTimer, counterRate } from './compute.js';
import type { PeriodData } from './period.js';

export interface ComputedPeriod {
  /** The period's boundary, unix seconds: every line of it carries this timestamp. */
  readonly timestampS: number;
  /** name -> value: counters, timer samples, gauges, set sizes (statsd's naming, tags as `name;k=v`). */
  readonly data: PeriodData;
  /** ms spent building the period (statsd's processing_time). */
  readonly processingTimeMs: number;
  /** Set fields as stored, `name\nmember`: the members, for a sink that prints them (console). */
  readonly setFields: readonly string[];
}

export type StatsdMetricsConfig = Pick<Config, 'flushInterval' | 'percentThreshold' | 'histogram' | 'calculatedTimerMetrics'>;

/** One timer's statsd timer_data: flat stats plus `histogram: { bin_<x>: n }`. */
export type TimerData = Record<string, number | Record<string, number>>;

/** The `metrics` object of statsd's 'flush' event (sets as member arrays, as console.js prints them). */
export interface StatsdMetrics {
  counters: Record<string, number>;
  timers: Record<string, number[]>;
  gauges: Record<string, number>;
  timer_data: Record<string, TimerData>;
  counter_rates: Record<string, number>;
  sets: Record<string, string[]>;
  pctThreshold: number[];
}

export function statsdMetrics(period: ComputedPeriod, cfg: StatsdMetricsConfig): StatsdMetrics {
  const d = period.data;
  const out: StatsdMetrics = { counters: {}, timers: {}, gauges: {}, timer_data: {}, counter_rates: {}, sets: {}, pctThreshold: [...cfg.percentThreshold] };
  for (const [name, v] of d.counters) {
    out.counters[name] = v;
    out.counter_rates[name] = counterRate(v, cfg.flushInterval);
  }
  const opts = {
    percentThreshold: cfg.percentThreshold,
    histogram: cfg.histogram,
    calculatedTimerMetrics: cfg.calculatedTimerMetrics,
    flushIntervalMs: cfg.flushInterval,
  };
  for (const [name, samples] of d.timers) {
    const td: TimerData = {};
    for (const stat of computeTimer(samples, opts, name)) {
      const [head, sub] = stat.path;
      if (head === undefined) continue;
      if (sub === undefined) td[head] = stat.value;
      else {
        const group = (td[head] ??= {}) as Record<string, number>;
        group[sub] = stat.value;
      }
    }
    out.timers[name] = samples.values;
    out.timer_data[name] = td;
  }
  for (const [name, v] of d.gauges) out.gauges[name] = v;
  for (const name of d.sets.keys()) out.sets[name] = [];
  for (const field of period.setFields) {
    const at = field.indexOf('\n');
    const list = out.sets[field.slice(0, at)];
    if (list) list.push(field.slice(at + 1));
  }
  return out;
}
