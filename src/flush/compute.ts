/**
 * Pure statsd maths: Etsy statsd 0.9's lib/process_metrics.js, replicated
 * operation for operation so every value is bit-identical (same sort, same
 * float operations in the same order) and every sub-metric comes out under
 * the same name, in the same order, after the same calculatedTimerMetrics
 * filter. No I/O, no clock.
 */
import type { HistogramConfig } from '../config/types.js';
import type { TimerSamples } from './period.js';

export interface TimerOptions {
  readonly percentThreshold: readonly number[];
  readonly histogram: readonly HistogramConfig[];
  /** statsd's calculatedTimerMetrics; empty means "all". */
  readonly calculatedTimerMetrics: readonly string[];
  readonly flushIntervalMs: number;
}

/** One timer sub-metric: path ['upper_90'] or ['histogram', 'bin_100']. */
export interface TimerStat {
  readonly path: readonly string[];
  readonly value: number;
}

/**
 * A timer sub-metric's name. TimerStatNames makes each one once per set of
 * options, so the stats of a million timers point at a few shared keys
 * instead of holding a string and a path each.
 */
export interface TimerStatKey {
  /** ['upper_90'], or ['histogram', 'bin_100'] for a histogram bin (statsd's timer_data nesting). */
  readonly path: readonly string[];
}

/** Where computeTimerInto appends a timer's stats, in statsd's order. */
export interface TimerStatsOut {
  readonly keys: TimerStatKey[];
  readonly values: number[];
}

/** statsd's counter rate: `value / (flushInterval / 1000)`, the same float ops. */
export function counterRate(value: number, flushIntervalMs: number): number {
  return value / (flushIntervalMs / 1000);
}

/** statsd's percentile key suffix: 90 -> '90', 99.9 -> '99_9', -10 -> 'top10' (first '.' and '-' only). */
export function cleanPct(pct: number): string {
  return String(pct).replace('.', '_').replace('-', 'top');
}

// statsd's filter_timer_metrics: '<metric>_<n>' / '<metric>_top<n>' -> '<metric>_percent'.
const PERCENT_SUFFIX = /_(top)?\d+$/;

function keep(key: string, calculated: readonly string[]): boolean {
  return calculated.length === 0 || calculated.includes(key.replace(PERCENT_SUFFIX, '_percent'));
}

/** statsd reads past the ends of its arrays for |pct| >= 100 and gets undefined; arithmetic on it is NaN. */
function at(a: readonly number[], i: number): number {
  return a[i] ?? NaN;
}

interface StatName extends TimerStatKey {
  /** Not dropped by calculatedTimerMetrics. */
  readonly kept: boolean;
}

interface PctNames {
  readonly pct: number;
  readonly count: StatName;
  readonly mean: StatName;
  readonly bound: StatName;
  readonly sum: StatName;
  readonly sumSquares: StatName;
}

/**
 * Every name a timer stat can take under one TimerOptions, made (and run
 * through the calculatedTimerMetrics filter) once. Equal names are one
 * object, so a Map keyed by them keeps statsd's object semantics.
 */
export class TimerStatNames {
  readonly pcts: readonly PctNames[];
  readonly std: StatName;
  readonly upper: StatName;
  readonly lower: StatName;
  readonly count: StatName;
  readonly countPs: StatName;
  readonly sum: StatName;
  readonly sumSquares: StatName;
  readonly mean: StatName;
  readonly median: StatName;
  /** Per histogram config entry, its bins' names (a repeated bin is one name). */
  readonly bins: ReadonlyArray<readonly StatName[]>;

  constructor(readonly opts: TimerOptions) {
    const calculated = opts.calculatedTimerMetrics;
    const flat = new Map<string, StatName>();
    const name = (key: string): StatName => {
      let n = flat.get(key);
      if (n === undefined) {
        n = { path: [key], kept: keep(key, calculated) };
        flat.set(key, n);
      }
      return n;
    };
    this.pcts = opts.percentThreshold.map((pct) => {
      const clean = cleanPct(pct);
      return {
        pct,
        count: name('count_' + clean),
        mean: name('mean_' + clean),
        bound: name((pct > 0 ? 'upper_' : 'lower_') + clean),
        sum: name('sum_' + clean),
        sumSquares: name('sum_squares_' + clean),
      };
    });
    this.std = name('std');
    this.upper = name('upper');
    this.lower = name('lower');
    this.count = name('count');
    this.countPs = name('count_ps');
    this.sum = name('sum');
    this.sumSquares = name('sum_squares');
    this.mean = name('mean');
    this.median = name('median');
    const histKept = keep('histogram', calculated);
    this.bins = opts.histogram.map((c) => {
      const byBin = new Map<string, StatName>();
      return c.bins.map((bin) => {
        const b = 'bin_' + String(bin).replace('.', '_');
        let n = byBin.get(b);
        if (n === undefined) {
          n = { path: ['histogram', b], kept: histKept };
          byBin.set(b, n);
        }
        return n;
      });
    });
  }

  /** The histogram config entry for a timer: the first whose metric is in its name (even with no bins), or -1. */
  histogramFor(key: string): number {
    const conf = this.opts.histogram;
    for (let i = 0; i < conf.length; i++) {
      if (key.includes((conf[i] as HistogramConfig).metric)) return i;
    }
    return -1;
  }
}

/**
 * statsd's timer_data for one timer, flattened. `samples.values` is sorted in
 * place. `key` is the timer's full name (`name;k=v` with tags), matched
 * against the histogram config by substring like statsd does.
 */
export function computeTimer(samples: TimerSamples, opts: TimerOptions, key: string): TimerStat[] {
  const out: TimerStatsOut = { keys: [], values: [] };
  computeTimerInto(samples, new TimerStatNames(opts), key, out);
  return out.keys.map((k, i) => ({ path: k.path, value: out.values[i] as number }));
}

/** computeTimer, appending the stats to `out` (names shared, see TimerStatNames); returns how many it appended. */
export function computeTimerInto(samples: TimerSamples, names: TimerStatNames, key: string, out: TimerStatsOut): number {
  // A Map keeps statsd's object semantics: a repeated key (duplicate
  // threshold or bin) keeps its first position and takes the last value.
  const data = new Map<StatName, number>();
  let hist: Map<StatName, number> | null = null;
  const flushSecs = names.opts.flushIntervalMs / 1000;
  const values = samples.values;
  const count = values.length;

  if (count > 0) {
    values.sort((a, b) => a - b);
    const min = at(values, 0);
    const max = at(values, count - 1);
    const cumulativeValues: number[] = [min];
    const cumulSumSquaresValues: number[] = [min * min];
    for (let i = 1; i < count; i++) {
      const v = at(values, i);
      cumulativeValues.push(v + at(cumulativeValues, i - 1));
      cumulSumSquaresValues.push(v * v + at(cumulSumSquaresValues, i - 1));
    }

    // Like statsd, these carry over from one threshold to the next.
    let sum = min;
    let sumSquares = min * min;
    let mean = min;
    let thresholdBoundary = max;

    for (const p of names.pcts) {
      const pct = p.pct;
      let numInThreshold = count;
      if (count > 1) {
        numInThreshold = Math.round((Math.abs(pct) / 100) * count);
        if (numInThreshold === 0) continue;
        if (pct > 0) {
          thresholdBoundary = at(values, numInThreshold - 1);
          sum = at(cumulativeValues, numInThreshold - 1);
          sumSquares = at(cumulSumSquaresValues, numInThreshold - 1);
        } else {
          thresholdBoundary = at(values, count - numInThreshold);
          sum = at(cumulativeValues, count - 1) - at(cumulativeValues, count - numInThreshold - 1);
          sumSquares =
            at(cumulSumSquaresValues, count - 1) - at(cumulSumSquaresValues, count - numInThreshold - 1);
        }
        mean = sum / numInThreshold;
      }
      data.set(p.count, numInThreshold);
      data.set(p.mean, mean);
      data.set(p.bound, thresholdBoundary);
      data.set(p.sum, sum);
      data.set(p.sumSquares, sumSquares);
    }

    sum = at(cumulativeValues, count - 1);
    sumSquares = at(cumulSumSquaresValues, count - 1);
    mean = sum / count;
    let sumOfDiffs = 0;
    for (let i = 0; i < count; i++) {
      const v = at(values, i);
      sumOfDiffs += (v - mean) * (v - mean);
    }
    const mid = Math.floor(count / 2);
    const median = count % 2 ? at(values, mid) : (at(values, mid - 1) + at(values, mid)) / 2;

    data.set(names.std, Math.sqrt(sumOfDiffs / count));
    data.set(names.upper, max);
    data.set(names.lower, min);
    data.set(names.count, samples.count);
    data.set(names.countPs, samples.count / flushSecs);
    data.set(names.sum, sum);
    data.set(names.sumSquares, sumSquares);
    data.set(names.mean, mean);
    data.set(names.median, median);

    // Bins are exclusive upper bounds over the sorted values; values at or
    // above the last finite bound are not counted (by statsd's design).
    const h = names.histogramFor(key);
    const conf = names.opts.histogram[h];
    const binNames = names.bins[h];
    if (conf !== undefined && binNames !== undefined && conf.bins.length > 0) {
      hist = new Map();
      let i = 0;
      for (let b = 0; b < conf.bins.length; b++) {
        const bin = conf.bins[b];
        let freq = 0;
        for (; i < count && (bin === 'inf' || at(values, i) < (bin as number)); i++) freq += 1;
        hist.set(binNames[b] as StatName, freq);
      }
    }
  } else {
    // statsd's `d["count"] = d["count_ps"] = 0` assigns right to left, so count_ps comes first.
    data.set(names.countPs, 0);
    data.set(names.count, 0);
  }

  let n = 0;
  for (const [name, value] of data) {
    if (!name.kept) continue;
    out.keys.push(name);
    out.values.push(value);
    n++;
  }
  // statsd adds 'histogram' after 'median', so it is always the last key.
  if (hist !== null) {
    for (const [bin, freq] of hist) {
      if (!bin.kept) continue;
      out.keys.push(bin);
      out.values.push(freq);
      n++;
    }
  }
  return n;
}
