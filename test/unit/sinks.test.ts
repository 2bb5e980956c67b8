/**
 * The sink boundary, without I/O: statsd's console backend output (compared
 * with Etsy statsd 0.9's own backends/console.js fed by its
 * lib/process_metrics.js), carbon's pickle framing (decoded by Python's
 * pickle), /proc/net/tcp addresses, and the import rules between src/flush/
 * and src/sink/.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { EventEmitter } from 'node:events';
import { readdirSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { describe, it } from 'node:test';
import type { HistogramConfig } from '../../src/config/types.js';
import { computePeriod } from '../../src/flush/compute-period.js';
import type { PeriodData, TimerSamples } from '../../src/flush/period.js';
import { ConsoleSink } from '../../src/sink/console/console-sink.js';
import { findState, procAddress } from '../../src/sink/graphite/peer-read-all.js';
import { METRICS_PER_FRAME, parseLine, pickleFrames } from '../../src/sink/graphite/pickle.js';

const TS = 1700000000;
const require = createRequire(import.meta.url);
const SRC = path.resolve(import.meta.dirname, '..', '..', 'src');

function period(): { data: PeriodData; setMembers: Map<string, Set<string>> } {
  return {
    data: {
      counters: new Map([['statsd.bad_lines_seen', 1], ['statsd.packets_received', 12], ['api.hits', 17], ['api.hits;env=prod', 3.5]]),
      timers: new Map<string, TimerSamples>([
        ['db.query', { values: [12, 3, 45, 7, 7, 100, 1.5, 22, 8, 60], count: 20 }],
        ['single', { values: [42], count: 1 }],
      ]),
      gauges: new Map([['statsd.timestamp_lag', 0], ['queue.depth', 250]]),
      sets: new Map([['users.unique', 2]]),
    },
    setMembers: new Map([['users.unique', new Set(['alice', 'bob'])]]),
  };
}

const cfg = {
  flushInterval: 10_000,
  percentThreshold: [90, -10] as readonly number[],
  histogram: [{ metric: 'db', bins: [10, 50, 'inf'] }] as readonly HistogramConfig[],
  calculatedTimerMetrics: [] as readonly string[],
};

/** What Etsy statsd 0.9 prints for the same period: process_metrics, then backends/console.js. */
function statsdConsole(data: PeriodData, members: Record<string, string[]>, prettyprint: boolean): string {
  type PM = (m: object, calc: readonly string[], fi: number, ts: number, cb: (m: object) => void) => void;
  const pm = require('statsd/lib/process_metrics.js') as { process_metrics: PM };
  const consolePath = require.resolve('statsd/backends/console.js');
  delete require.cache[consolePath];
  const backend = require(consolePath) as { init: (t: number, c: object, e: EventEmitter) => boolean };
  const events = new EventEmitter();
  backend.init(TS - 10, { console: { prettyprint } }, events);
  const metrics = {
    counters: Object.fromEntries(data.counters), gauges: Object.fromEntries(data.gauges),
    timers: Object.fromEntries([...data.timers].map(([k, t]) => [k, [...t.values]])),
    timer_counters: Object.fromEntries([...data.timers].map(([k, t]) => [k, t.count])),
    sets: Object.fromEntries(Object.entries(members).map(([k, v]) => [k, { values: () => v, size: () => v.length }])),
    pctThreshold: cfg.percentThreshold, histogram: cfg.histogram,
  };
  let out = '';
  const original = console.log;
  console.log = (...args: unknown[]) => {
    out += require('node:util').format(...args) + '\n';
  };
  try {
    pm.process_metrics(metrics, cfg.calculatedTimerMetrics, cfg.flushInterval, TS, (m) => events.emit('flush', TS, m));
  } finally {
    console.log = original;
  }
  return out;
}

describe('console backend', () => {
  for (const prettyprint of [false, true]) {
    it(`prints each flush as statsd's backends/console.js does${prettyprint ? ' (prettyprint)' : ''}`, async () => {
      const p = period();
      let printed = '';
      const sink = new ConsoleSink({ ...cfg, console: { prettyprint } }, (t) => void (printed += t));
      const computed = computePeriod(p.data, cfg, TS, 1, p.setMembers);
      assert.deepEqual(await sink.encode(), [], 'nothing for the outbox');
      sink.committed(computed);
      const expected = statsdConsole(period().data, { 'users.unique': ['alice', 'bob'] }, prettyprint);
      assert.equal(printed, expected);
      assert.match(printed, /^Flushing stats at {2}/);
      assert.match(printed, /timer_data/);
    });
  }
});

describe('pickle framing', () => {
  it('parses plaintext lines; names may hold tags', () => {
    assert.deepEqual(parseLine('a.b;k=v -1.5 1700000000'), { name: 'a.b;k=v', value: -1.5, timestamp: 1700000000 });
    assert.equal(parseLine('garbage'), null);
    assert.equal(parseLine('a x 1'), null);
  });

  it("frames a list of (name, (timestamp, value)) tuples that Python's pickle reads back", () => {
    const lines = ['a.b 1.5 1700000000', 'stats.c;env=prod -3 1700000010', 'ünï.côdé 0.1 1700000020', 'big 1e+21 4000000000'];
    for (let i = 0; i < METRICS_PER_FRAME + 10; i++) lines.push(`many.m${i} ${i} ${TS}`);
    const { frames, skipped } = pickleFrames([lines.slice(0, 2).join('\n') + '\n', lines.slice(2).join('\n') + '\nnot a line\n']);
    assert.equal(skipped, 1);
    const py = [
      'import sys, pickle, struct, json',
      'b = sys.stdin.buffer.read(); out = []; i = 0',
      'while i < len(b):',
      '    n = struct.unpack("!L", b[i:i+4])[0]; out.append(pickle.loads(b[i+4:i+4+n])); i += 4 + n',
      'print(json.dumps([[len(f)] + [[m, t, v] for (m, (t, v)) in f] for f in out]))',
    ].join('\n');
    const decoded = JSON.parse(execFileSync('/usr/bin/python3', ['-c', py], { input: Buffer.concat(frames) }).toString()) as Array<[number, ...Array<[string, number, number]>]>;
    assert.deepEqual(decoded.map((f) => f[0]), [METRICS_PER_FRAME, lines.length - METRICS_PER_FRAME], 'frames of at most METRICS_PER_FRAME');
    const points = decoded.flatMap((f) => f.slice(1) as Array<[string, number, number]>);
    assert.deepEqual(points.slice(0, 4), [['a.b', 1700000000, 1.5], ['stats.c;env=prod', 1700000010, -3], ['ünï.côdé', 1700000020, 0.1], ['big', 4000000000, 1e21]]);
    assert.equal(points.length, lines.length);
  });
});

describe('peer-read-all', () => {
  it('writes addresses the way /proc/net/tcp{,6} shows them and finds a socket state', () => {
    assert.equal(procAddress('127.0.0.1', 2003), '0100007F:07D3');
    assert.equal(procAddress('::1', 80), '00000000000000000000000001000000:0050');
    assert.equal(procAddress('::ffff:127.0.0.1', 80), '0000000000000000FFFF00000100007F:0050');
    const table = [
      '  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode',
      '   0: 0100007F:9C40 0100007F:07D3 06 00000000:00000000 03:00001770 00000000     0        0 0 3 0000000000000000',
      '   1: 0100007F:9C41 0100007F:07D3 0B 00000001:00000000 01:00000014 00000000  1000        0 0 1 0000000000000000',
    ].join('\n');
    const ends = (localPort: number) => ({ localAddress: '127.0.0.1', localPort, remoteAddress: '127.0.0.1', remotePort: 2003 });
    assert.equal(findState(table, ends(0x9c40)), '06');
    assert.equal(findState(table, ends(0x9c41)), '0B');
    assert.equal(findState(table, ends(0x9c42)), null);
  });
});

describe('module boundaries', () => {
  it('nothing in src/flush/ imports src/sink/ (src/flush-thread.ts, the composition root, wires them)', () => {
    const offenders: string[] = [];
    for (const file of readdirSync(path.join(SRC, 'flush'))) {
      if (!file.endsWith('.ts')) continue;
      const text = readFileSync(path.join(SRC, 'flush', file), 'utf8');
      for (const m of text.matchAll(/^\s*(?:import|export)\b[^;]*?from\s+['"]([^'"]+)['"]/gm)) {
        if (/(^|\/)sink\//.test(m[1] ?? '')) offenders.push(`${file}: ${m[1]}`);
      }
      for (const m of text.matchAll(/import\(\s*['"]([^'"]+)['"]\s*\)/g)) {
        if (/(^|\/)sink\//.test(m[1] ?? '')) offenders.push(`${file}: import(${m[1]})`);
      }
    }
    assert.deepEqual(offenders, []);
  });

  it('nothing under src/sink/ imports src/flush/compute.ts (the statsd maths is done once, in flushing)', () => {
    const compute = path.join(SRC, 'flush', 'compute');
    const offenders: string[] = [];
    const files = readdirSync(path.join(SRC, 'sink'), { recursive: true, encoding: 'utf8' }).filter((f) => f.endsWith('.ts'));
    assert.ok(files.length > 5, 'finds the sink sources');
    for (const file of files) {
      const at = path.join(SRC, 'sink', file);
      const text = readFileSync(at, 'utf8');
      const specifiers = [
        ...[...text.matchAll(/^\s*(?:import|export)\b[^;]*?from\s+['"]([^'"]+)['"]/gm)].map((m) => m[1] ?? ''),
        ...[...text.matchAll(/import\(\s*['"]([^'"]+)['"]\s*\)/g)].map((m) => m[1] ?? ''),
      ];
      for (const spec of specifiers) {
        if (spec.startsWith('.') && path.resolve(path.dirname(at), spec).replace(/\.(js|ts)$/, '') === compute) offenders.push(`${file}: ${spec}`);
      }
    }
    assert.deepEqual(offenders, []);
  });
});
