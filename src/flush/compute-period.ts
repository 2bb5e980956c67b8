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

  // Names and values are copied each in one step, by spreading the Map's
  // keys()/values() (V8's fast path: nothing allocated per name, where a
  // for-of over entries() or values() allocates an object per name; a
  // `new Array(n)` of 100k or more would start as a slow dictionary).
  const counterNames = [...data.counters.keys()];
  const counterValues = [...data.counters.values()];
  const rates = new Float64Array(counterNames.length);
  for (let c = 0; c < rates.length; c++) {
    rates[c] = counterRate(counterValues[c]!, cfg.flushInterval);
    if (++n % SLICE === 0) yield;
  }

  const names = new TimerStatNames({
    percentThreshold: cfg.percentThreshold,
    histogram: cfg.histogram,
    calculatedTimerMetrics: cfg.calculatedTimerMetrics,
    flushIntervalMs: cfg.flushInterval,
  });
  const timerNames: string[] = [];
  const samples: number[][] = [];
  const statStart = new Uint32Array(data.timers.size + 1);
  const stats = { keys: [] as TimerStatKey[], values: [] as number[] };
  let t = 0;
  let clamped = 0;
  for (const [name, timer] of data.timers) {
    timerNames.push(name);
    samples.push(timer.values);
    clamped += finiteStats(stats, stats.keys.length - computeTimerInto(timer, names, name, stats));
    statStart[++t] = stats.keys.length;
    if (++n % SLICE === 0) yield;
  }

  const gaugeNames = [...data.gauges.keys()];
  const gaugeValues = [...data.gauges.values()];
  const setNames = [...data.sets.keys()];
  const setCounts = [...data.sets.values()];
  n += gaugeNames.length + setNames.length;

  return {
    counters: { names: counterNames, values: counterValues, rates },
    timers: { names: timerNames, samples, statStart, statKeys: stats.keys, statValues: stats.values },
    gauges: { names: gaugeNames, values: gaugeValues },
    sets: { names: setNames, counts: setCounts },
    numStats: n,
    ...(clamped > 0 ? { clamped } : {}),
  };
}

/** The whole computed period in one go (tests, and callers that want a plain function). */
export function computePeriod(
  data: PeriodData,
  cfg: ComputeConfig,
  timestampS: number,
  processingTimeMs: number,
  setMembers: ReadonlyMap<string, ReadonlySet<string>> = new Map(),
): ComputedPeriod {
  return { ...runSync(computeMetricsSliced(data, cfg)), timestampS, processingTimeMs, setMembers };
}

/**
 * No value that is not finite leaves for Carbon but a counter's (statsd's
 * Infinity): a timer stat that overflowed (1e200|ms: sum_squares) is clamped
 * to the finite doubles; one that is not a number (percentThreshold -100
 * reads before the samples in statsd: NaN sum and mean) is left out. The
 * stats from `from` on are the timer just computed. Returns how many were clamped.
 */
function finiteStats(stats: { keys: TimerStatKey[]; values: number[] }, from: number): number {
  const { keys, values } = stats;
  let w = from;
  let clamped = 0;
  for (let r = from; r < values.length; r++) {
    const v = values[r]!;
    if (v !== v) continue;
    keys[w] = keys[r]!;
    if (v > Number.MAX_VALUE || v < -Number.MAX_VALUE) {
      values[w++] = v > 0 ? Number.MAX_VALUE : -Number.MAX_VALUE;
      clamped++;
    } else {
      values[w++] = v;
    }
  }
  keys.length = w;
  values.length = w;
  return clamped;
}
