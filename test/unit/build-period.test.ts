import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { buildPeriod, buildPeriodSliced, type BuildConfig } from '../../src/flush/build-period.js';
import { runSliced, runSync, SLICE } from '../../src/flush/slices.js';
import { computePeriod } from '../../src/flush/compute-period.js';
import { encodePeriod, encodePeriodSliced } from '../../src/sink/graphite/encode.js';
import { LineChunker, chunkLines } from '../../src/sink/graphite/chunk.js';
import { loadConfig } from '../../src/config/load.js';
import type { RawPeriod } from '../../src/store/store.js';

const base: BuildConfig = { deleteCounters: false, deleteTimers: false, deleteSets: false, prefixStats: 'statsd' };

function raw(p: Partial<RawPeriod> = {}): RawPeriod {
  return {
    counters: new Map(),
    timers: new Map(),
    timerCounts: new Map(),
    sets: new Map(),
    gauges: new Map(),
    gaugesTouched: new Map(),
    dropped: 0,
    droppedExamples: [],
    ...p,
  };
}

describe('buildPeriod', () => {
  it('fills in known idle names and reports only names not known yet', () => {
    const r = raw({
      counters: new Map([['a', 2], ['b', 3], ['statsd.bad_lines_seen', 1]]),
      timerCounts: new Map([['t1', 2], ['t2', 1]]),
      timers: new Map([['t1', [5, 1]], ['t2', [9]]]),
      sets: new Map([['s1', new Set(['m1', 'm2'])], ['s2', new Set(['m1'])]]),
      gauges: new Map([['g', '7']]),
    });
    const { data, newKnown } = buildPeriod(r, { counters: ['a', 'idle'], timers: ['t1', 'tidle'], sets: ['s2', 'sidle'] }, base);
    assert.deepEqual([...data.counters], [['statsd.bad_lines_seen', 1], ['statsd.packets_received', 0], ['statsd.metrics_received', 0], ['a', 2], ['idle', 0], ['b', 3]]);
    assert.deepEqual([...data.timers].map(([n, t]) => [n, t.values, t.count]), [['t1', [5, 1], 2], ['tidle', [], 0], ['t2', [9], 1]]);
    assert.deepEqual([...data.sets], [['s2', 1], ['sidle', 0], ['s1', 2]]);
    assert.deepEqual([...data.gauges], [['g', 7]]);
    assert.deepEqual(newKnown, { counters: ['b'], timers: ['t2'], sets: ['s1'] });
  });

  it('remembers nothing that a delete* option would not re-emit (but keeps statsd-named counters)', () => {
    const r = raw({
      counters: new Map([['a', 1], ['my.packets_received', 1]]),
      timerCounts: new Map([['t', 1]]),
      sets: new Map([['s', new Set(['m'])]]),
    });
    const cfg = { ...base, deleteCounters: true, deleteTimers: true, deleteSets: true };
    const { data, newKnown } = buildPeriod(r, { counters: ['idle', 'x.bad_lines_seen'], timers: ['tidle'], sets: ['sidle'] }, cfg);
    assert.deepEqual(newKnown, { counters: ['my.packets_received'], timers: [], sets: [] });
    assert.equal(data.counters.has('idle'), false);
    assert.equal(data.counters.get('x.bad_lines_seen'), 0);
    assert.equal(data.timers.has('tidle'), false);
    assert.equal(data.sets.has('sidle'), false);
  });

  it('sliced: yields every SLICE names and builds exactly what the one-go run builds', async () => {
    const n = SLICE * 3 + 17;
    const counters = new Map<string, number>();
    for (let i = 0; i < n; i++) counters.set(`c.${i}`, i);
    const known = { counters: Array.from({ length: n }, (_, i) => `k.${i}`), timers: [], sets: [] };
    let yields = 0;
    const g = buildPeriodSliced(raw({ counters }), known, base);
    let r = g.next();
    while (!r.done) {
      yields++;
      r = g.next();
    }
    assert.equal(yields, Math.floor((2 * n) / SLICE));
    const once = buildPeriod(raw({ counters }), known, base);
    const sliced = await runSliced(buildPeriodSliced(raw({ counters }), known, base));
    assert.deepEqual([...sliced.value.data.counters], [...once.data.counters]);
    assert.equal(sliced.value.newKnown.counters.length, n);
    assert.equal(r.value.data.counters.size, 2 * n + 3);
  });
});

describe('encodePeriodSliced', () => {
  it('gives the lines encodePeriod gives, chunked, with the turns given away not counted as calculation time', async () => {
    const { config } = loadConfig({ file: null, env: {}, overrides: {} });
    const cfg = config;
    const counters = new Map<string, number>();
    for (let i = 0; i < SLICE * 2 + 5; i++) counters.set(`c.${i}`, i);
    const data = { counters, timers: new Map(), gauges: new Map([['g', 1]]), sets: new Map([['s', 2]]) };
    const self = { processingTime: 3, graphite: { last_exception: 0, last_flush: 0, flush_time: 0, flush_length: 0 } };
    const clock = (() => {
      let t = 0;
      return () => t++;
    })();
    const period = computePeriod(data, cfg, 100, self.processingTime);
    const plain = encodePeriod(period, self.graphite, cfg, () => 0);
    const chunker = new LineChunker(64 * 1024);
    const g = encodePeriodSliced(period, self.graphite, cfg, (l) => chunker.add(l), clock);
    const numStats = runSync(g);
    assert.equal(numStats, plain.numStats);
    const chunks = chunker.finish();
    assert.ok(chunks.length > 1);
    const expected = plain.lines.map((l) => l.replace(/^(stats\.statsd\.graphiteStats\.calculationtime) 0 100$/, '$1 3 100'));
    assert.deepEqual(chunks, chunkLines(expected, 64 * 1024));
    assert.equal(chunker.lines, plain.lines.length);
    // The clock ticks once per read: 5 reads (start, 2 per yield x 2 yields) before the last, busy time 1 + 1 + 1 = 3.
    assert.match(chunks.join(''), /^stats\.statsd\.graphiteStats\.calculationtime 3 100$/m);
  });
});
