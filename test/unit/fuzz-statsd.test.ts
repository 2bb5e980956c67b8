/**
 * Fuzzing the statsd line parser: valid lines of every type mutated (bit
 * flips, insertions, deletions, truncation at every byte, splices, huge and
 * tiny numbers, Unicode whitespace, invalid UTF-8, very long names and lines),
 * with known-good lines interleaved. The parser never throws; every sample
 * has a finite value, a sane rate and a sanitized name; every non-empty line
 * is accounted for exactly once (good, event or bad, never silently dropped);
 * the good lines' totals come out exact. FUZZ_SEED=<n> replays a run.
 */
import assert from 'node:assert/strict';
import { test, type TestContext } from 'node:test';
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
