/**
 * A period's statsd maths, done once for every sink: PeriodData in,
 * ComputedMetrics out (counter rates, timer stats via compute.ts, gauges, set
 * counts, numStats). Pure; written as a generator that yields every SLICE
 * names (see slices.ts). Timer samples are sorted in place.
 */
import type { Config } from '../config/types.js';
import { computeTimerInto, counterRate, TimerStatNames, type TimerStatKey } from './compute.js';
import type { ComputedMetrics, ComputedPeriod } from './computed-period.js';
import type { PeriodData } from './period.js';
import { runSync, SLICE, type Sliced } from './slices.js';

export type ComputeConfig = Pick<Config, 'flushInterval' | 'percentThreshold' | 'histogram' | 'calculatedTimerMetrics'>;

export function* computeMetricsSliced(data: PeriodData, cfg: ComputeConfig): Sliced<ComputedMetrics> {
  let n = 0;

  const counterNames = new Array<string>(data.counters.size);
  const counterValues = new Float64Array(data.counters.size);
  const rates = new Float64Array(data.counters.size);
  let c = 0;
  for (const [name, value] of data.counters) {
    counterNames[c] = name;
    counterValues[c] = value;
    rates[c++] = counterRate(value, cfg.flushInterval);
    if (++n % SLICE === 0) yield;
  }

  const names = new TimerStatNames({
    percentThreshold: cfg.percentThreshold,
    histogram: cfg.histogram,
    calculatedTimerMetrics: cfg.calculatedTimerMetrics,
    flushIntervalMs: cfg.flushInterval,
  });
  const timerNames = new Array<string>(data.timers.size);
  const samples = new Array<number[]>(data.timers.size);
  const statStart = new Uint32Array(data.timers.size + 1);
  const stats = { keys: [] as TimerStatKey[], values: [] as number[] };
  let t = 0;
  for (const [name, timer] of data.timers) {
    timerNames[t] = name;
    samples[t] = timer.values;
    computeTimerInto(timer, names, name, stats);
    statStart[++t] = stats.keys.length;
    if (++n % SLICE === 0) yield;
  }

  const gaugeNames = new Array<string>(data.gauges.size);
  const gaugeValues = new Float64Array(data.gauges.size);
  let g = 0;
  for (const [name, value] of data.gauges) {
    gaugeNames[g] = name;
    gaugeValues[g++] = value;
    if (++n % SLICE === 0) yield;
  }

  const setNames = new Array<string>(data.sets.size);
  const setCounts = new Float64Array(data.sets.size);
  let s = 0;
  for (const [name, count] of data.sets) {
    setNames[s] = name;
    setCounts[s++] = count;
    if (++n % SLICE === 0) yield;
  }

  return {
    counters: { names: counterNames, values: counterValues, rates },
    timers: { names: timerNames, samples, statStart, statKeys: stats.keys, statValues: stats.values },
    gauges: { names: gaugeNames, values: gaugeValues },
    sets: { names: setNames, counts: setCounts },
    numStats: n,
  };
}

/** The whole computed period in one go (tests, and callers that want a plain function). */
export function computePeriod(
  data: PeriodData,
  cfg: ComputeConfig,
  timestampS: number,
  processingTimeMs: number,
  setFields: readonly string[] = [],
): ComputedPeriod {
  return { ...runSync(computeMetricsSliced(data, cfg)), timestampS, processingTimeMs, setFields };
}
