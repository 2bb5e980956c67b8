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

function histogramBins(key: string, conf: readonly HistogramConfig[]): ReadonlyArray<number | 'inf'> {
  for (const c of conf) {
    if (key.includes(c.metric)) return c.bins; // first match wins, even with no bins
  }
  return [];
}

/**
 * statsd's timer_data for one timer, flattened. `samples.values` is sorted in
 * place. `key` is the timer's full name (`name;k=v` with tags), matched
 * against the histogram config by substring like statsd does.
 */
export function computeTimer(samples: TimerSamples, opts: TimerOptions, key: string): TimerStat[] {
  // A Map keeps statsd's object semantics: a repeated key (duplicate
  // threshold or bin) keeps its first position and takes the last value.
  const data = new Map<string, number>();
  let hist: Map<string, number> | null = null;
  const flushSecs = opts.flushIntervalMs / 1000;
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

    for (const pct of opts.percentThreshold) {
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
      const clean = cleanPct(pct);
      data.set('count_' + clean, numInThreshold);
      data.set('mean_' + clean, mean);
      data.set((pct > 0 ? 'upper_' : 'lower_') + clean, thresholdBoundary);
      data.set('sum_' + clean, sum);
      data.set('sum_squares_' + clean, sumSquares);
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

    data.set('std', Math.sqrt(sumOfDiffs / count));
    data.set('upper', max);
    data.set('lower', min);
    data.set('count', samples.count);
    data.set('count_ps', samples.count / flushSecs);
    data.set('sum', sum);
    data.set('sum_squares', sumSquares);
    data.set('mean', mean);
    data.set('median', median);

    // Bins are exclusive upper bounds over the sorted values; values at or
    // above the last finite bound are not counted (by statsd's design).
    const bins = histogramBins(key, opts.histogram);
    if (bins.length > 0) {
      hist = new Map();
      let i = 0;
      for (const bin of bins) {
        let freq = 0;
        for (; i < count && (bin === 'inf' || at(values, i) < bin); i++) freq += 1;
        hist.set('bin_' + String(bin).replace('.', '_'), freq);
      }
    }
  } else {
    // statsd's `d["count"] = d["count_ps"] = 0` assigns right to left, so count_ps comes first.
    data.set('count_ps', 0);
    data.set('count', 0);
  }

  const out: TimerStat[] = [];
  const calculated = opts.calculatedTimerMetrics;
  for (const [name, value] of data) {
    if (keep(name, calculated)) out.push({ path: [name], value });
  }
  // statsd adds 'histogram' after 'median', so it is always the last key.
  if (hist !== null && keep('histogram', calculated)) {
    for (const [bin, freq] of hist) out.push({ path: ['histogram', bin], value: freq });
  }
  return out;
}
