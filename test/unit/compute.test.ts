import assert from 'node:assert/strict';
import { createRequire } from 'node:module';
import { describe, it } from 'node:test';
import type { HistogramConfig } from '../../src/config/types.js';
import { cleanPct, computeTimer, counterRate, type TimerOptions } from '../../src/flush/compute.js';
import { Rand } from '../helpers/fuzz.js';

const base: TimerOptions = { percentThreshold: [90], histogram: [], calculatedTimerMetrics: [], flushIntervalMs: 10000 };

function run(values: number[], opts: Partial<TimerOptions> = {}, key = 'a.timer', count = values.length) {
  const stats = computeTimer({ values, count }, { ...base, ...opts }, key);
  return stats.map((s) => [s.path.join('.'), s.value] as const);
}

const oneToTen = (): number[] => [7, 3, 10, 1, 5, 9, 2, 8, 6, 4];

describe('computeTimer (hand cases)', () => {
  it('percentiles 90, 50, -10, 99.9 on 1..10, in statsd key order', () => {
    assert.deepEqual(run(oneToTen(), { percentThreshold: [90, 50, -10, 99.9] }, 'a', 20), [
      ['count_90', 9], ['mean_90', 5], ['upper_90', 9], ['sum_90', 45], ['sum_squares_90', 285],
      ['count_50', 5], ['mean_50', 3], ['upper_50', 5], ['sum_50', 15], ['sum_squares_50', 55],
      ['count_top10', 1], ['mean_top10', 10], ['lower_top10', 10], ['sum_top10', 10], ['sum_squares_top10', 100],
      ['count_99_9', 10], ['mean_99_9', 5.5], ['upper_99_9', 10], ['sum_99_9', 55], ['sum_squares_99_9', 385],
      ['std', Math.sqrt(8.25)], ['upper', 10], ['lower', 1],
      ['count', 20], ['count_ps', 2], // count is the sum of 1/sampleRate (10 samples at @0.5)
      ['sum', 55], ['sum_squares', 385], ['mean', 5.5], ['median', 5.5],
    ]);
  });

  it('sorts the samples in place, numerically', () => {
    const values = [10, 9, 100, 1];
    run(values);
    assert.deepEqual(values, [1, 9, 10, 100]);
  });

  it('median of an odd count is the middle value; std is the population std', () => {
    const m = new Map(run([3, 1, 2], { percentThreshold: [] }));
    assert.equal(m.get('median'), 2);
    assert.equal(m.get('mean'), 2);
    assert.equal(m.get('std'), Math.sqrt(2 / 3));
    assert.equal(new Map(run([4, 1, 3, 2])).get('median'), 2.5);
  });

  it('skips a threshold that rounds to no samples', () => {
    const keys = run([1, 2, 3], { percentThreshold: [10, -10, 0] }).map(([k]) => k);
    assert.deepEqual(keys, ['std', 'upper', 'lower', 'count', 'count_ps', 'sum', 'sum_squares', 'mean', 'median']);
  });

  it('a single sample keeps every threshold (0 included, which is a "lower_")', () => {
    assert.deepEqual(run([7], { percentThreshold: [90, -10, 0] }).slice(0, 15), [
      ['count_90', 1], ['mean_90', 7], ['upper_90', 7], ['sum_90', 7], ['sum_squares_90', 49],
      ['count_top10', 1], ['mean_top10', 7], ['lower_top10', 7], ['sum_top10', 7], ['sum_squares_top10', 49],
      ['count_0', 1], ['mean_0', 7], ['lower_0', 7], ['sum_0', 7], ['sum_squares_0', 49],
    ]);
    assert.equal(new Map(run([7])).get('std'), 0);
  });

  it('a repeated threshold keeps its first position, like an object key', () => {
    const keys = run([1, 2, 3, 4], { percentThreshold: [50, 90, 50] }).map(([k]) => k);
    assert.deepEqual(keys.slice(0, 10), [
      'count_50', 'mean_50', 'upper_50', 'sum_50', 'sum_squares_50',
      'count_90', 'mean_90', 'upper_90', 'sum_90', 'sum_squares_90',
    ]);
  });

  it('-100 reads before the array start like statsd: sum and mean are NaN', () => {
    const m = new Map(run([1, 2], { percentThreshold: [-100] }));
    assert.equal(m.get('lower_top100'), 1);
    assert.ok(Number.isNaN(m.get('sum_top100')));
    assert.ok(Number.isNaN(m.get('mean_top100')));
  });

  it('an empty timer is count_ps 0 then count 0 (statsd assigns right to left), whatever its sample count', () => {
    assert.deepEqual(run([], {}, 'a', 5), [['count_ps', 0], ['count', 0]]);
    assert.deepEqual(run([], { calculatedTimerMetrics: ['count_ps', 'upper'] }), [['count_ps', 0]]);
  });

  it('histogram: substring match, first match wins, exclusive bounds, inf and float bins', () => {
    const histogram: HistogramConfig[] = [
      { metric: 'foo', bins: [0.5, 2, 'inf'] },
      { metric: 'skip', bins: [] },
      { metric: '', bins: [100, 1e21] },
    ];
    const values = (): number[] => [1000, 0.1, 3, 0.5, 2, 1];
    const hist = (key: string) => run(values(), { histogram }, key).filter(([k]) => k.startsWith('histogram.'));
    assert.deepEqual(hist('a.foo.b;env=x'), [['histogram.bin_0_5', 1], ['histogram.bin_2', 2], ['histogram.bin_inf', 3]]);
    assert.deepEqual(hist('bar'), [['histogram.bin_100', 5], ['histogram.bin_1e+21', 1]]);
    assert.deepEqual(hist('skipped'), []);
    // the histogram is statsd's last key
    assert.equal(run(values(), { histogram }, 'foo').at(-4)?.[0], 'median');
  });

  it('calculatedTimerMetrics: <metric>_<n> and _top<n> match <metric>_percent; 99_9 does not', () => {
    const keys = run(oneToTen(), {
      percentThreshold: [90, -10, 99.9],
      histogram: [{ metric: '', bins: [5] }],
      calculatedTimerMetrics: ['upper_percent', 'lower_percent', 'count', 'histogram', 'count_99_percent'],
    }).map(([k]) => k);
    assert.deepEqual(keys, ['upper_90', 'lower_top10', 'count_99_9', 'count', 'histogram.bin_5']);
  });

  it('counterRate and cleanPct', () => {
    assert.equal(counterRate(7, 10000), 0.7);
    assert.equal(counterRate(1, 3000), 1 / 3);
    assert.equal(cleanPct(99.95), '99_95');
    assert.equal(cleanPct(-0.5), 'top0_5');
    assert.equal(cleanPct(1e-7), '1etop7');
  });
});

// ---- differential: statsd's own lib/process_metrics.js ----

interface PmMetrics {
  counters: Record<string, number>;
  gauges: Record<string, number>;
  timers: Record<string, number[]>;
  timer_counters: Record<string, number>;
  sets: Record<string, unknown>;
  pctThreshold: readonly number[];
  histogram: readonly HistogramConfig[];
  timer_data?: Record<string, Record<string, number | Record<string, number>>>;
}
type ProcessMetrics = (m: PmMetrics, calc: readonly string[], flushInterval: number, ts: number, cb: (m: PmMetrics) => void) => void;

const require = createRequire(import.meta.url);
const pm = require('statsd/lib/process_metrics.js') as { process_metrics: ProcessMetrics };

function randomTimer(rnd: () => number): { values: number[]; count: number } {
  const sizes = [0, 1, 2, 3, 7, 10, 33, 100, 257];
  const n = sizes[Math.floor(rnd() * sizes.length)] ?? 1;
  const values: number[] = [];
  let count = 0;
  for (let i = 0; i < n; i++) {
    const kind = rnd();
    if (kind < 0.3) values.push(Math.floor(rnd() * 1000));
    else if (kind < 0.6) values.push(Math.round(rnd() * 1e5) / 100);
    else if (kind < 0.7) values.push(-rnd() * 50);
    else if (kind < 0.8 && values.length > 0) values.push(values[Math.floor(rnd() * values.length)] ?? 0);
    else values.push(rnd() * 1e6);
    count += 1 / ([1, 0.5, 0.1, 0.3][Math.floor(rnd() * 4)] ?? 1);
  }
  return { values, count };
}

const configs: TimerOptions[] = [
  base,
  { ...base, percentThreshold: [90, 50, -10, 99.9], flushIntervalMs: 1000 },
  { percentThreshold: [0, 100, -100, 50.5, -0.1, 33.3, 90, 90], histogram: [], calculatedTimerMetrics: [], flushIntervalMs: 3000 },
  {
    percentThreshold: [95, -5, 99.9],
    histogram: [{ metric: 'h1', bins: [10, 100.5, 1000, 'inf'] }, { metric: 'h', bins: [0.25, 500] }],
    calculatedTimerMetrics: [],
    flushIntervalMs: 7000,
  },
  {
    percentThreshold: [90, -10, 99.9],
    histogram: [{ metric: '', bins: [1, 100, 'inf'] }],
    calculatedTimerMetrics: ['count', 'count_ps', 'upper_percent', 'sum_squares_percent', 'median', 'histogram', 'std'],
    flushIntervalMs: 10000,
  },
];

describe('computeTimer vs statsd process_metrics (differential)', () => {
  configs.forEach((opts, ci) => {
    it(`config ${ci}: every sub-metric identical, in the same order`, () => {
      const rand = new Rand(0x5eed + ci);
      const rnd = (): number => rand.next();
      const names = ['t.plain', 't.h1.x', 't.h2;env=prod', 'other', 'z.h'];
      for (let round = 0; round < 40; round++) {
        const timers: Record<string, number[]> = {};
        const timerCounters: Record<string, number> = {};
        const ours = new Map<string, { values: number[]; count: number }>();
        for (const name of names) {
          const t = randomTimer(rnd);
          ours.set(name, t);
          timers[name] = [...t.values];
          timerCounters[name] = t.count;
        }
        let timerData: PmMetrics['timer_data'];
        const metrics: PmMetrics = {
          counters: {}, gauges: {}, sets: {}, timers, timer_counters: timerCounters,
          pctThreshold: opts.percentThreshold, histogram: opts.histogram,
        };
        pm.process_metrics(metrics, opts.calculatedTimerMetrics, opts.flushIntervalMs, 1700000000, (m) => {
          timerData = m.timer_data;
        });
        for (const [name, t] of ours) {
          const expected: Array<[string, number]> = [];
          for (const [k, v] of Object.entries(timerData?.[name] ?? {})) {
            if (typeof v === 'number') expected.push([k, v]);
            else for (const [bk, bv] of Object.entries(v)) expected.push([`${k}.${bk}`, bv]);
          }
          const actual = computeTimer(t, opts, name).map((s): [string, number] => [s.path.join('.'), s.value]);
          assert.deepStrictEqual(actual, expected, `${name} round ${round}`);
        }
      }
    });
  });
});
