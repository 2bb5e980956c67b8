import assert from 'node:assert/strict';
import { EventEmitter } from 'node:events';
import { readFileSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { describe, it } from 'node:test';
import type { GraphiteConfig, HistogramConfig } from '../../src/config/types.js';
import { computePeriod, type ComputeConfig } from '../../src/flush/compute-period.js';
import type { PeriodData, TimerSamples } from '../../src/flush/period.js';
import { encodePeriod as encodeComputed, GraphiteNamer, type EncodeConfig, type EncodedPeriod, type GraphiteStatus } from '../../src/sink/graphite/encode.js';
import { Rand } from '../helpers/fuzz.js';

const TS = 1700000000;
const STARTUP = 1699999990;
const goldenDir = new URL('../fixtures/golden/', import.meta.url);

const graphiteDefaults: GraphiteConfig = {
  legacyNamespace: true, globalPrefix: 'stats', prefixCounter: 'counters', prefixTimer: 'timers',
  prefixGauge: 'gauges', prefixSet: 'sets', globalSuffix: '',
};
type Cfg = EncodeConfig & ComputeConfig;
const legacy: Cfg = {
  flushInterval: 10000, percentThreshold: [90], histogram: [], calculatedTimerMetrics: [],
  graphite: graphiteDefaults, prefixStats: 'statsd', keyNameSanitize: true, flush_counts: true,
};
const newNamespace: Cfg = {
  ...legacy,
  percentThreshold: [90, -10, 99.9],
  histogram: [{ metric: 'render', bins: [10, 50.5, 'inf'] }],
  graphite: { ...graphiteDefaults, legacyNamespace: false, globalPrefix: 'app', prefixCounter: 'cnt', globalSuffix: 'host1' },
};

// A fixed period: statsd's own counters and lag gauge, tags, sample-rated counts, an idle timer.
function fixedPeriod(): PeriodData {
  return {
    counters: new Map([
      ['statsd.bad_lines_seen', 1], ['statsd.packets_received', 12], ['statsd.metrics_received', 20],
      ['api.hits', 17], ['api.hits;env=prod;region=eu', 3.5], ['sampled', 40], ['idle', 0],
    ]),
    timers: new Map<string, TimerSamples>([
      ['db.query', { values: [12, 3, 45, 7, 7, 100, 1.5, 22, 8, 60], count: 20 }],
      ['page.render;env=prod', { values: [5, 70, 33.25, 9], count: 4 }],
      ['single', { values: [42], count: 1 }],
      ['idle.timer', { values: [], count: 0 }],
    ]),
    gauges: new Map([['statsd.timestamp_lag', -0.004], ['queue.depth', 250], ['temp;room=a', -3.5]]),
    sets: new Map([['users.unique', 42], ['users.unique;app=web', 7]]),
  };
}
const self: { processingTime: number; graphite: GraphiteStatus } = {
  processingTime: 3,
  graphite: { last_exception: 0, last_flush: STARTUP, flush_time: 0, flush_length: 0 },
};

/** Computes the period (flush/), then encodes it (the sink), as the flusher and the graphite sink do. */
function encodePeriod(data: PeriodData, ts: number, s: typeof self, cfg: Cfg, now?: () => number): EncodedPeriod {
  return encodeComputed(computePeriod(data, cfg, ts, s.processingTime), s.graphite, cfg, now);
}

function checkGolden(file: string, lines: readonly string[]): void {
  const url = new URL(file, goldenDir);
  const text = lines.join('\n') + '\n';
  if (process.env['UPDATE_GOLDEN'] === '1') writeFileSync(url, text);
  assert.equal(text, readFileSync(url, 'utf8'));
}

describe('GraphiteNamer', () => {
  it('legacy names, numStats without "stats.", graphiteStats under stats.<prefixStats>', () => {
    const n = new GraphiteNamer(legacy);
    assert.equal(n.counterRate('a.b;k=v'), 'stats.a.b;k=v');
    assert.equal(n.counterCount('a.b'), 'stats_counts.a.b');
    assert.equal(n.format(n.timerNamespace, 't;k=v', 'histogram', 'bin_1'), 'stats.timers.t.histogram.bin_1;k=v');
    assert.equal(n.gauge('g'), 'stats.gauges.g');
    assert.equal(n.set('s'), 'stats.sets.s.count');
    assert.equal(n.numStats(), 'statsd.numStats');
    assert.equal(n.calculationTime(), 'stats.statsd.graphiteStats.calculationtime');
    assert.equal(n.statsdMetric('processing_time'), 'stats.statsd.processing_time');
    assert.equal(n.graphiteStat('last_flush'), 'stats.statsd.graphiteStats.last_flush');
  });

  it('new namespace: empty prefixes are skipped, suffix goes before the tags, sk() only when keyNameSanitize is off', () => {
    const n = new GraphiteNamer({
      ...legacy,
      keyNameSanitize: false,
      flush_counts: false,
      graphite: { ...graphiteDefaults, legacyNamespace: false, globalPrefix: '', prefixCounter: '', globalSuffix: 'sfx' },
    });
    assert.equal(n.counterRate('my key/x!;t=a b'), 'my_key-x.rate.sfx;t=a b');
    assert.equal(n.counterCount('c'), null);
    assert.equal(n.gauge('g'), 'gauges.g.sfx');
    assert.equal(n.numStats(), 'statsd.numStats.sfx');
    assert.equal(n.graphiteStat('flush_time'), 'statsd.graphiteStats.flush_time.sfx');
    const unsanitized = new GraphiteNamer(legacy);
    assert.equal(unsanitized.counterRate('my key/x!'), 'stats.my key/x!');
  });
});

describe('encodePeriod (golden, ts 1700000000)', () => {
  it('legacy namespace', () => {
    const { lines, numStats } = encodePeriod(fixedPeriod(), TS, self, legacy, () => 0);
    assert.equal(numStats, 16);
    checkGolden('encode-legacy.txt', lines);
  });
  it('new namespace with globalPrefix, prefixCounter, globalSuffix, tags, histogram', () => {
    checkGolden('encode-new-namespace.txt', encodePeriod(fixedPeriod(), TS, self, newNamespace, () => 0).lines);
  });
});

// ---- differential: statsd's own backends/graphite.js + lib/process_metrics.js ----

const require = createRequire(import.meta.url);
type Obj<T> = Record<string, T>;
interface StatsdMetrics {
  counters: Obj<number>; gauges: Obj<number>; timers: Obj<number[]>; timer_counters: Obj<number>;
  sets: Obj<{ size: () => number }>; pctThreshold: readonly number[]; histogram: readonly HistogramConfig[];
}
type ProcessMetrics = (m: StatsdMetrics, calc: readonly string[], fi: number, ts: number, cb: (m: StatsdMetrics) => void) => void;
const pm = require('statsd/lib/process_metrics.js') as { process_metrics: ProcessMetrics };
const net = require('net') as { createConnection: unknown };
const graphitePath = require.resolve('statsd/backends/graphite.js');

/** Runs one real statsd flush of `data` through a fresh graphite backend and returns the text it writes. */
function statsdFlush(data: PeriodData, cfg: Cfg): string[] {
  delete require.cache[graphitePath];
  const backend = require(graphitePath) as { init: (t: number, c: object, e: EventEmitter, l: object) => boolean };
  const g = cfg.graphite;
  const events = new EventEmitter();
  backend.init(STARTUP, {
    graphiteHost: 'carbon.invalid', flushInterval: cfg.flushInterval, prefixStats: cfg.prefixStats,
    keyNameSanitize: cfg.keyNameSanitize, flush_counts: cfg.flush_counts,
    graphite: { ...g, globalSuffix: g.globalSuffix === '' ? undefined : g.globalSuffix },
  }, events, { log: () => undefined });

  const written: string[] = [];
  interface FakeSocket {
    addListener(): FakeSocket;
    on(event: string, fn: (this: FakeSocket) => void): FakeSocket;
    write(s: string): void;
    end(): void;
  }
  // Connects at once: post_stats' 'connect' handler runs inside the flush, synchronously.
  const socket: FakeSocket = {
    addListener: () => socket,
    on(event, fn) {
      if (event === 'connect') fn.call(socket);
      return socket;
    },
    write: (s) => void written.push(s),
    end: () => undefined,
  };
  const metrics: StatsdMetrics = {
    counters: Object.fromEntries(data.counters), gauges: Object.fromEntries(data.gauges),
    timers: {}, timer_counters: {}, sets: {}, pctThreshold: cfg.percentThreshold, histogram: cfg.histogram,
  };
  for (const [k, t] of data.timers) {
    metrics.timers[k] = [...t.values];
    metrics.timer_counters[k] = t.count;
  }
  for (const [k, n] of data.sets) metrics.sets[k] = { size: () => n };

  const original = net.createConnection;
  net.createConnection = () => socket;
  try {
    pm.process_metrics(metrics, cfg.calculatedTimerMetrics, cfg.flushInterval, TS, (m) => events.emit('flush', TS, m));
  } finally {
    net.createConnection = original;
  }
  assert.equal(written.length, 1);
  return (written[0] ?? '').split('\n').slice(0, -1);
}

/** `name value`, with the timing-dependent values masked and the timestamp dropped. */
function comparable(lines: readonly string[]): string[] {
  return lines.map((line) => {
    const nameValue = line.slice(0, line.lastIndexOf(' ')); // names may hold spaces when unsanitized
    const name = nameValue.slice(0, nameValue.lastIndexOf(' '));
    return /\.(calculationtime|processing_time)(\.|;|$)/.test(name) ? name : nameValue;
  });
}

function randomPeriod(rnd: () => number): PeriodData {
  const names = ['a.b', 'render.x', 'my key/odd!', 'tagged;env=prod;dc=1', 'z'];
  const pick = (): string => names[Math.floor(rnd() * names.length)] ?? 'a';
  const timers = new Map<string, TimerSamples>();
  const counters = new Map<string, number>();
  const gauges = new Map<string, number>();
  const sets = new Map<string, number>();
  for (let i = 0; i < 6; i++) {
    const n = Math.floor(rnd() * 4) ** 3;
    const values = Array.from({ length: n }, () => Math.round(rnd() * 1e5) / 100 - 100);
    timers.set(`t${i}.${pick()}`, { values, count: n / 0.3 });
    counters.set(`c${i}.${pick()}`, Math.floor(rnd() * 100) / 0.1);
    gauges.set(`g${i}.${pick()}`, rnd() * 1e3 - 500);
    sets.set(`s${i}.${pick()}`, Math.floor(rnd() * 50));
  }
  return { counters, timers, gauges, sets };
}

const diffConfigs: Array<[string, Cfg]> = [
  ['legacy defaults', legacy],
  ['legacy, suffix, no flush_counts, keyNameSanitize off', {
    ...legacy, flush_counts: false, keyNameSanitize: false, percentThreshold: [50, -10],
    graphite: { ...graphiteDefaults, globalSuffix: 'host1' },
  }],
  ['new namespace', newNamespace],
  ['new namespace, empty prefixes, custom prefixStats, filtered timers', {
    ...newNamespace, prefixStats: 'mystats', keyNameSanitize: false, flushInterval: 3000,
    calculatedTimerMetrics: ['count', 'upper_percent', 'lower_percent', 'histogram', 'median'],
    histogram: [{ metric: '', bins: [0, 100, 'inf'] }],
    graphite: { ...graphiteDefaults, legacyNamespace: false, globalPrefix: '', prefixCounter: '', prefixGauge: 'gg' },
  }],
];

describe('encodePeriod vs statsd graphite backend (differential)', () => {
  diffConfigs.forEach(([label, cfg], ci) => {
    it(`${label}: same names, values and order`, () => {
      const rand = new Rand(0xc0ffee + ci);
      const rnd = (): number => rand.next();
      const periods = [fixedPeriod(), ...Array.from({ length: 20 }, () => randomPeriod(rnd))];
      for (const period of periods) {
        const expected = comparable(statsdFlush(period, cfg));
        const { lines, numStats } = encodePeriod(period, TS, self, cfg);
        assert.deepStrictEqual(comparable(lines), expected);
        assert.ok(lines.every((l) => l.endsWith(` ${TS}`)));
        assert.equal(numStats, period.counters.size + period.timers.size + period.gauges.size + period.sets.size);
      }
    });
  });
});
