/**
 * Fuzzing the statsd line parser: valid lines of every type mutated (bit
 * flips, insertions, deletions, truncation at every byte, splices, huge and
 * tiny numbers, Unicode whitespace, invalid UTF-8, very long names and lines),
 * with known-good lines interleaved. The parser never throws; every sample
 * has a finite value, a sane rate and a sanitized name; every non-empty line
 * is accounted for exactly once (good, event or bad, never silently dropped);
 * the good lines' totals come out exact; the key intern table changes no
 * sample; the number reader equals Number() on random numeric text.
 * FUZZ_SEED=<n> replays a run.
 */
import assert from 'node:assert/strict';
import { test, type TestContext } from 'node:test';
import { decimalInto, trimmedDecimalInto } from '../../src/parse/number.js';
import type { SampleSink } from '../../src/parse/sample-sink.js';
import { StatsdLineParser, statusText, type ParseOptions } from '../../src/parse/statsd-line.js';
import {
  CheckingSink, describeInput, fuzzSeed, GoodTotals, goodPart, mixedPacket, Rand, systematicGarbage, withoutQ,
} from '../helpers/fuzz.js';

const SEED = fuzzSeed();

/** Checks, line by line (through onLine), that each non-empty line is exactly one of good, event or bad. */
function accountLines(parser: StatsdLineParser, sink: CheckingSink, problems: string[]): () => void {
  let prev: { good: number; bad: number; events: number; samples: number; calls: number; text: string } | null = null;
  let badCalls = 0;
  const settle = (): void => {
    if (prev === null) return;
    const dg = parser.goodLines - prev.good;
    const db = parser.badLines - prev.bad;
    const de = parser.eventsIgnored - prev.events;
    const ds = sink.samples - prev.samples;
    const calls = badCalls - prev.calls;
    const ok =
      (dg === 1 && de === 0 && ds >= 1) || (dg === 0 && de === 1 && db === 0 && ds === 0) || (dg === 0 && de === 0 && db >= 1 && ds === 0);
    if (!ok || calls !== (db > 0 ? 1 : 0)) {
      problems.push(`line ${JSON.stringify(prev.text)}: good +${dg}, bad +${db}, events +${de}, samples +${ds}, onBadLine x${calls}`);
    }
    prev = null;
  };
  parser.onLine = (buf, s, e) => {
    settle();
    const text = buf.toString('latin1', s, e);
    if (s >= e || e > buf.length || text.includes('\n')) problems.push(`onLine region ${s}..${e} ${JSON.stringify(text)}`);
    prev = { good: parser.goodLines, bad: parser.badLines, events: parser.eventsIgnored, samples: sink.samples, calls: badCalls, text };
  };
  parser.onBadLine = (status, buf, s, e) => {
    badCalls++;
    if (status <= 0 || statusText(status).startsWith('unknown status')) problems.push(`status ${status} for ${describeInput(buf.subarray(s, e))}`);
  };
  return settle;
}

function nonEmptyLines(packet: Buffer): number {
  let n = 0;
  let s = 0;
  while (s <= packet.length) {
    let e = packet.indexOf(0x0a, s);
    if (e < 0) e = packet.length;
    if (e > s) n++;
    s = e + 1;
  }
  return n;
}

interface Run {
  parser: StatsdLineParser;
  sink: CheckingSink;
  good: GoodTotals;
  problems: string[];
  lines: number;
}

/** Parse every packet of gen through a fresh parser; embedded: each packet sits inside random bytes, parsed by region. */
function run(opts: ParseOptions, packets: (good: GoodTotals) => Iterable<Buffer>, embedded: boolean, r: Rand): Run {
  const parser = new StatsdLineParser(opts);
  const sink = new CheckingSink(opts.keyNameSanitize, opts.maxNameLength);
  const problems: string[] = [];
  const settle = accountLines(parser, sink, problems);
  const good = new GoodTotals();
  let lines = 0;
  for (const packet of packets(good)) {
    lines += nonEmptyLines(packet);
    let buf = packet;
    let start = 0;
    if (embedded) {
      const pad = (): Buffer => withoutQ(Buffer.from(Array.from({ length: r.int(8) }, () => r.int(256))));
      const before = pad();
      buf = Buffer.concat([before, packet, pad()]);
      start = before.length;
    }
    try {
      parser.parsePacket(buf, start, start + packet.length, sink);
    } catch (err) {
      assert.fail(`seed ${SEED}: parsePacket threw ${String(err)} on ${describeInput(packet)}`);
    }
    settle();
  }
  return { parser, sink, good, problems, lines };
}

function assertRun(t: TestContext, what: string, res: Run): void {
  const { parser, sink, good } = res;
  const tell = `seed ${SEED} (FUZZ_SEED=${SEED} replays), ${what}`;
  assert.deepEqual(sink.problems.slice(0, 10), [], `${tell}: bad samples`);
  assert.deepEqual(res.problems.slice(0, 10), [], `${tell}: line accounting`);
  assert.equal(parser.metricsReceived, res.lines, `${tell}: metricsReceived counts every non-empty line`);
  assert.ok(good.lines > 0 && parser.badLines > 0 && parser.goodLines > good.lines, `${tell}: the run has good, bad and garbage-but-good lines`);
  assert.deepEqual(goodPart(sink.counters), good.counters, `${tell}: good counters exact`);
  assert.deepEqual(goodPart(sink.gauges), good.gauges, `${tell}: good gauges exact`);
  assert.deepEqual(goodPart(sink.sets), good.sets, `${tell}: good sets exact`);
  const sorted = (m: ReadonlyMap<string, { values: number[]; count: number }>) =>
    new Map([...m].map(([k, v]) => [k, { values: [...v.values].sort((a, b) => a - b), count: v.count }]));
  assert.deepEqual(sorted(goodPart(sink.timers)), sorted(good.timers), `${tell}: good timers exact`);
  t.diagnostic(
    `${what}: ${parser.metricsReceived} lines, ${parser.goodLines} good (${good.lines} known-good), ${parser.badLines} bad values, ` +
      `${parser.eventsIgnored} events, ${sink.samples} samples`,
  );
}

const CONFIGS: ReadonlyArray<[string, ParseOptions]> = [
  ['sanitized', { keyNameSanitize: true }],
  ['sanitized, 64-byte keys, tiny intern table', { keyNameSanitize: true, maxNameLength: 64, intern: { maxEntries: 8, maxArenaBytes: 256, maxEntriesCap: 8, maxArenaCap: 256 } }],
  ['not sanitized', { keyNameSanitize: false }],
];

test(`statsd parser: systematic mutations of the corpus (truncation at every byte, every bit flip, every deletion), seed ${SEED}`, (t) => {
  t.diagnostic(`FUZZ_SEED=${SEED}`);
  for (const [what, opts] of CONFIGS) {
    const r = new Rand(SEED);
    const res = run(opts, function* (good) {
      let batch: Buffer[] = [];
      for (const g of systematicGarbage()) {
        batch.push(g, Buffer.from(good.next(r)));
        if (batch.length >= 16) {
          yield Buffer.concat(batch.flatMap((b) => [b, Buffer.from('\n')]));
          batch = [];
        }
      }
      if (batch.length > 0) yield Buffer.concat(batch.flatMap((b) => [b, Buffer.from('\n')]));
    }, false, r);
    assertRun(t, `systematic, ${what}`, res);
  }
});

test(`statsd parser: random mutations, good lines interleaved, packets parsed whole and as regions of larger buffers, seed ${SEED}`, (t) => {
  t.diagnostic(`FUZZ_SEED=${SEED}`);
  for (const [what, opts] of CONFIGS) {
    for (const embedded of [false, true]) {
      const r = new Rand(SEED);
      const res = run(opts, function* (good) {
        for (let i = 0; i < 2500; i++) yield mixedPacket(r, good, 1 + r.int(24));
      }, embedded, r);
      assertRun(t, `random${embedded ? ' (regions)' : ''}, ${what}`, res);
    }
  }
});

test(`statsd parser: the key intern table is only a cache (a tiny one and none-like give the same samples), seed ${SEED}`, () => {
  const record = (): SampleSink & { calls: string[] } => {
    const calls: string[] = [];
    return {
      calls,
      counter: (name, value, rate) => void calls.push(`c ${name} ${value} ${rate}`),
      gauge: (name, value, delta) => void calls.push(`g ${name} ${value} ${delta}`),
      timer: (name, value, rate) => void calls.push(`t ${name} ${value} ${rate}`),
      set: (name, member) => void calls.push(`s ${name} ${JSON.stringify(member)}`),
    };
  };
  const r = new Rand(SEED);
  const good = new GoodTotals();
  const packets = Array.from({ length: 1500 }, () => mixedPacket(r, good, 1 + r.int(24), 0.1));
  const calls = [
    { keyNameSanitize: true },
    { keyNameSanitize: true, intern: { maxEntries: 4, maxArenaBytes: 64, maxEntriesCap: 4, maxArenaCap: 64, restLookups: 3 } },
  ].map((opts) => {
    const parser = new StatsdLineParser(opts);
    const sink = record();
    for (const p of packets) parser.parsePacket(p, 0, p.length, sink);
    return sink.calls;
  });
  assert.ok(calls[0]!.length > 10_000);
  assert.deepEqual(calls[1], calls[0], `seed ${SEED}`);
});

test(`number reader: decimalInto and trimmedDecimalInto equal Number() on random numeric text, and accept exactly the decimal grammar, seed ${SEED}`, () => {
  const r = new Rand(SEED);
  const GRAMMAR = /^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$/;
  const out = new Float64Array(1);
  const alphabet = '0123456789012345678901234567890123456789..eE+-';
  const digits = (n: number): string => Array.from({ length: n }, () => r.int(10)).join('');
  const spaces = ['\u00a0', ' ', '\t', '\u3000', '\ufeff', '\u2028'];
  let accepted = 0;
  for (let i = 0; i < 60_000; i++) {
    let s: string;
    const k = r.int(4);
    if (k === 0) s = Array.from({ length: 1 + r.int(30) }, () => alphabet[r.int(alphabet.length)]).join('');
    else if (k === 1) s = `${r.pick(['', '-', '+'])}${digits(1 + r.int(25))}${r.chance(0.5) ? '.' + digits(r.int(25)) : ''}${r.chance(0.7) ? `e${r.pick(['', '-', '+'])}${r.int(400)}` : ''}`;
    else if (k === 2) s = `${r.int(1e9)}e${r.int(60) - 30}`;
    else s = (r.next() * 10 ** (r.int(40) - 20)).toPrecision(1 + r.int(20));
    const want = Number(s);
    const valid = GRAMMAR.test(s) && Number.isFinite(want);
    const buf = Buffer.from(s);
    const ok = decimalInto(buf, 0, buf.length, out, 0);
    assert.equal(ok, valid, `seed ${SEED}: ${JSON.stringify(s)} accepted?`);
    if (ok) {
      accepted++;
      assert.ok(Object.is(out[0], want), `seed ${SEED}: ${JSON.stringify(s)} read as ${out[0]}, Number() says ${want}`);
    }
    const t = Buffer.from(r.pick(spaces) + s + r.pick(spaces));
    assert.equal(trimmedDecimalInto(t, 0, t.length, out, 0), valid, `seed ${SEED}: ${JSON.stringify(t.toString())} accepted?`);
    if (valid) assert.ok(Object.is(out[0], want), `seed ${SEED}: ${JSON.stringify(t.toString())} read as ${out[0]}`);
  }
  assert.ok(accepted > 30_000, `${accepted} accepted`);
});

test(`statsd parser: giant lines (60 KB names, tags, values, digits, colons, 15,000 values), seed ${SEED}`, (t) => {
  const big = 60_000;
  const giants = [
    `${'n'.repeat(big)}:1|c`, `a:1|c|#${'t:v,'.repeat(big / 4)}x`, `a:${'9'.repeat(big)}|c`, `a:0.${'0'.repeat(big)}1|ms`,
    `a:1e${'9'.repeat(big)}|g`, `a${':'.repeat(big)}|c`, `a:${'1|c:'.repeat(15_000)}1|c`, `a:${'|'.repeat(big)}`,
    `a:1|c${'|@0.5'.repeat(big / 5)}`, `a:1|c|T${'1'.repeat(big)}`, `a:1|c|c:${'x'.repeat(big)}`, `u:${'m'.repeat(big)}|s`,
    `${'\u3000'.repeat(big / 3)}:1|c`, `_e{${'1'.repeat(big)},1}:a|b`, `${'\u00a0'.repeat(big / 2)}`,
  ].map((s) => withoutQ(Buffer.from(s)));
  for (const [what, opts] of CONFIGS) {
    const r = new Rand(SEED);
    const res = run(opts, function* (good) {
      for (const g of giants) yield Buffer.concat([Buffer.from(good.next(r) + '\n'), g, Buffer.from('\n' + good.next(r))]);
    }, false, r);
    assertRun(t, `giant lines, ${what}`, res);
  }
});
