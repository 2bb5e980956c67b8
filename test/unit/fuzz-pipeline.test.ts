/**
 * Fuzz output through the whole pure path, in process: parse -> Batch ->
 * one period's data (as one merge into an empty period gives it) ->
 * computePeriod -> Graphite encode. Every emitted line is
 * `<name> <finite number> <integer timestamp>`, except statsd's own
 * `Infinity` for a counter whose sum overflowed (README, "Arithmetic"), and
 * the good lines' totals come out exact at the Graphite names.
 * FUZZ_SEED=<n> replays a run.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Batch } from '../../src/aggregate/batch.js';
import type { GraphiteConfig } from '../../src/config/types.js';
import { computePeriod, type ComputeConfig } from '../../src/flush/compute-period.js';
import type { PeriodData, TimerSamples } from '../../src/flush/period.js';
import { StatsdLineParser } from '../../src/parse/statsd-line.js';
import { encodePeriod, type EncodeConfig } from '../../src/sink/graphite/encode.js';
import { describeInput, fuzzSeed, GoodTotals, mixedPacket, Rand, SANITIZED_KEY } from '../helpers/fuzz.js';

const SEED = fuzzSeed();
const TS = 1700000000;

const graphite: GraphiteConfig = {
  legacyNamespace: true, globalPrefix: 'stats', prefixCounter: 'counters', prefixTimer: 'timers',
  prefixGauge: 'gauges', prefixSet: 'sets', globalSuffix: '',
};
type Cfg = EncodeConfig & ComputeConfig;
const legacy: Cfg = {
  flushInterval: 10000, percentThreshold: [90, -10], histogram: [{ metric: 'fz', bins: [0, 10, 'inf'] }], calculatedTimerMetrics: [],
  graphite, prefixStats: 'statsd', keyNameSanitize: true, flush_counts: true,
};
const newNamespace: Cfg = {
  ...legacy,
  percentThreshold: [99.9, -50, -100, 100],
  graphite: { ...graphite, legacyNamespace: false, globalPrefix: 'app', prefixCounter: 'cnt', globalSuffix: 'host1' },
};

/** The period one Batch gives when merged into an empty period (gauges: a delta adds to 0), plus statsd's own counters. */
function periodOf(batch: Batch, own: ReadonlyArray<[string, number]>): PeriodData {
  const counters = new Map<string, number>(own);
  batch.counterNames.forEach((name, i) => counters.set(name, batch.counterValue(i)));
  const timers = new Map<string, TimerSamples>();
  const all = batch.timerSampleArray;
  batch.timerNames.forEach((name, i) => {
    const from = batch.timerOffset(i);
    timers.set(name, { values: Array.from(all.subarray(from, from + batch.timerLength(i))), count: batch.timerCount(i) });
  });
  const gauges = new Map<string, number>();
  batch.gaugeNames.forEach((name, i) => gauges.set(name, batch.gaugeValue(i)));
  const sets = new Map<string, number>([...batch.sets].map(([name, e]) => [name, e.members.size]));
  return { counters, timers, gauges, sets };
}

const LINE = /^(\S+) (\S+) (\d+)$/;

test(`fuzz through parse -> batch -> compute -> encode: every Graphite line finite (but statsd's counter Infinity), good totals exact, seed ${SEED}`, (t) => {
  t.diagnostic(`FUZZ_SEED=${SEED}`);
  for (const [what, cfg] of [['legacy namespace', legacy], ['new namespace', newNamespace]] as const) {
    const r = new Rand(SEED);
    const parser = new StatsdLineParser({ keyNameSanitize: true });
    let lines = 0;
    let infinite = 0;
    for (let period = 0; period < 40; period++) {
      const batch = new Batch();
      const good = new GoodTotals();
      const bad0 = parser.badLines;
      const received0 = parser.metricsReceived;
      let packets = 0;
      for (let i = 0; i < 60; i++) {
        const packet = mixedPacket(r, good, 1 + r.int(20));
        packets++;
        try {
          parser.parsePacket(packet, 0, packet.length, batch);
        } catch (err) {
          assert.fail(`seed ${SEED}: ${String(err)} on ${describeInput(packet)}`);
        }
      }
      const own: Array<[string, number]> = [
        ['statsd.bad_lines_seen', parser.badLines - bad0], ['statsd.packets_received', packets],
        ['statsd.metrics_received', parser.metricsReceived - received0],
      ];
      const data = periodOf(batch, own);
      const infiniteCounters = new Set([...data.counters].filter(([, v]) => !Number.isFinite(v)).map(([k]) => k));
      const status = { last_exception: 0, last_flush: TS - 10, flush_time: 0, flush_length: 0 };
      const encoded = encodePeriod(computePeriod(data, cfg, TS, 1), status, cfg, () => 0);
      const byName = new Map<string, string>();
      for (const line of encoded.lines) {
        lines++;
        const m = LINE.exec(line);
        assert.ok(m, `seed ${SEED}, ${what}: line shape ${JSON.stringify(line)}`);
        const [, name, value, ts] = m;
        assert.equal(Number(ts), TS, `seed ${SEED}: timestamp of ${line}`);
        assert.ok(SANITIZED_KEY.test(name!), `seed ${SEED}: name ${JSON.stringify(name)}`);
        byName.set(name!, value!);
        if (Number.isFinite(Number(value)) && String(Number(value)) === value) continue;
        // statsd's own exception: a counter's rate and count print Infinity when its sum overflowed.
        const semi = name!.indexOf(';');
        const head = semi < 0 ? name! : name!.slice(0, semi);
        const tags = semi < 0 ? '' : name!.slice(semi);
        const stem = cfg.graphite.legacyNamespace ? head.replace(/^stats(_counts)?\./, '') : head.replace(/^app\.cnt\./, '').replace(/\.(rate|count)\.host1$/, '');
        const base = stem + tags;
        assert.ok(/^-?Infinity$/.test(value!) && infiniteCounters.has(base), `seed ${SEED}, ${what}: value of ${JSON.stringify(line)}`);
        infinite++;
      }
      if (!cfg.graphite.legacyNamespace) continue;
      const at = (name: string): string | undefined => byName.get(name);
      for (const [name, sum] of good.counters) {
        assert.equal(at(`stats_counts.${name}`), String(sum), `seed ${SEED}: ${name}`);
        assert.equal(at(`stats.${name}`), String(sum / 10), `seed ${SEED}: ${name} rate`);
      }
      for (const [name, tm] of good.timers) {
        const sorted = [...tm.values].sort((a, b) => a - b);
        assert.equal(at(`stats.timers.${name}.count`), String(tm.count), `seed ${SEED}: ${name}.count`);
        assert.equal(at(`stats.timers.${name}.sum`), String(sorted.reduce((a, b) => a + b, 0)), `seed ${SEED}: ${name}.sum`);
        assert.equal(at(`stats.timers.${name}.upper`), String(sorted[sorted.length - 1]), `seed ${SEED}: ${name}.upper`);
        assert.equal(at(`stats.timers.${name}.lower`), String(sorted[0]), `seed ${SEED}: ${name}.lower`);
      }
      for (const [name, v] of good.gauges) assert.equal(at(`stats.gauges.${name}`), String(v), `seed ${SEED}: ${name}`);
      for (const [name, m] of good.sets) assert.equal(at(`stats.sets.${name}.count`), String(m.size), `seed ${SEED}: ${name}`);
      assert.equal(at('stats_counts.statsd.bad_lines_seen'), String(own[0]![1]));
    }
    t.diagnostic(`${what}: ${lines} Graphite lines checked, ${infinite} of them statsd's counter Infinity`);
  }
});
