/**
 * A computed period as Etsy statsd 0.9 hands it to its backends' 'flush'
 * event (counters, timers, gauges, timer_data, counter_rates, sets,
 * pctThreshold), for the console backend. Only reshapes the computed values:
 * the maths was done in flush/.
 */
import type { Config } from '../../config/types.js';
import type { ComputedPeriod } from '../../flush/computed-period.js';

export type StatsdMetricsConfig = Pick<Config, 'percentThreshold'>;

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
  const out: StatsdMetrics = { counters: {}, timers: {}, gauges: {}, timer_data: {}, counter_rates: {}, sets: {}, pctThreshold: [...cfg.percentThreshold] };
  const c = period.counters;
  c.names.forEach((name, i) => {
    out.counters[name] = c.values[i]!;
    out.counter_rates[name] = c.rates[i]!;
  });
  const t = period.timers;
  t.names.forEach((name, i) => {
    const td: TimerData = {};
    for (let j = t.statStart[i]!; j < t.statStart[i + 1]!; j++) {
      const [head, sub] = t.statKeys[j]!.path;
      const value = t.statValues[j]!;
      if (head === undefined) continue;
      if (sub === undefined) td[head] = value;
      else {
        const group = (td[head] ??= {}) as Record<string, number>;
        group[sub] = value;
      }
    }
    out.timers[name] = t.samples[i] as number[];
    out.timer_data[name] = td;
  });
  period.gauges.names.forEach((name, i) => (out.gauges[name] = period.gauges.values[i]!));
  for (const name of period.sets.names) out.sets[name] = [...(period.setMembers.get(name) ?? [])];
  return out;
}
