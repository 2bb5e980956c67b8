/**
 * Differential test against Etsy statsd 0.9 (node_modules/statsd, run as a
 * child process). The same datagrams, in the same order, go over UDP to
 * statsd and to an in-process tallyd; each writes to its own CarbonListener.
 * For every config below, the flush that holds the corpus and the flush(es)
 * after it (idle re-emission, delete* options, gauge TTLs) must carry the
 * same multiset of `name value` lines.
 *
 * What is compared: per flush, the sorted `name value` strings. Timestamps are
 * not compared (see 1). The values (not the names) of timing-dependent
 * metrics are masked as '*': <prefixStats>.processing_time,
 * graphiteStats.{calculationtime, last_exception, last_flush, flush_time,
 * flush_length} and <prefixStats>.timestamp_lag.
 *
 * Documented differences (kept out of the compared corpus, with the reason):
 *
 * | #  | statsd 0.9                                   | tallyd                                   | reason |
 * | -- | -------------------------------------------- | ---------------------------------------- | ------ |
 * | 1  | flushes every flushInterval from its start   | flushes at wall-clock multiples of       | every tallyd node agrees on boundaries; points line up with Graphite buckets. Flushes are matched by sequence (the one holding the corpus, then the next), not by ts |
 * |    | time; graphiteStats.* lines stamped with the | flushInterval; every line stamped with   | a replayed period must reproduce the same lines (DESIGN invariant 4) |
 * |    | send time                                    | the period boundary                      | |
 * | 2  | timestamp_lag only from its 2nd flush, so    | the same, counted from the first period  | only flushes after statsd's first are compared here; the first period's lines are checked in flusher-periods.test.ts. Its value is timing-dependent (masked) |
 * |    | numStats is one less in its 1st flush        | ever committed on the key prefix         | |
 * | 3  | `h` and `d` are counters                     | `h` and `d` are timers (DogStatsD)       | DogStatsD clients send histograms/distributions; counting them is a statsd accident |
 * | 4  | unknown or empty type (`a:1|x`, `a:1|`) is a | bad line                                 | stricter parser (src/parse/statsd-line.ts) |
 * |    | counter                                      |                                          | |
 * | 5  | accepts rate `@0` (Infinity), `@2`, values   | bad line                                 | stricter parser: rate in (0, 1] with a finite inverse; values are decimals (spaces around them are trimmed as Number() does, and that is in the corpus) |
 * |    | '0x10', 'Infinity'                           |                                          | |
 * | 6  | (matched) a multi-value line with a bad      | the same                                 | in the corpus |
 * |    | entry keeps its good entries                 |                                          | |
 * | 7  | empty name (`:1|c`) is a counter named ''    | bad line                                 | a metric needs a name |
 * | 8  | a `|#tags` field runs to the end of the line | tags end at the next '|'; DogStatsD      | DogStatsD wire format |
 * |    | (`|#t:v|@0.5` gets tag 't=v0.5', rate 1);    | `|T<ts>`, `|c:`, `|e:`, `|card:` fields  | |
 * |    | `|T<ts>` etc. are bad sample rates           | accepted and ignored                     | |
 * | 9  | a set member with ':' is split as a second   | the line is bad                          | README policy: a set member cannot hold ':' |
 * |    | value                                        |                                          | |
 * | 10 | (matched) runs of Unicode whitespace in     | the same                                 | in the corpus, with other non-ASCII letters, which both drop |
 * |    | names become '_', other non-ASCII is dropped |                                          | |
 * | 11 | names `constructor`, `__proto__`, ... break  | ordinary names                           | statsd keeps metrics in plain objects; tallyd in Maps/Redis. Checked for tallyd alone in the last test |
 * |    | (string counters, TypeError on timers)       |                                          | |
 * | 12 | counters, gauge deltas and timer counts are  | summed per batch, then added in Redis    | a batch costs one Redis round trip (DESIGN invariant 1). Sums of values that are not exact in binary (0.1 + 0.2) may differ in the last digit, so the corpus uses binary-exact counter/gauge values and rates (0.5, 0.25, 1.5, @0.5, @0.25, @0.1 whose 1/rate is exactly 10). Timer samples are compared exactly with any value: both sort the same samples and sum them in the same order |
 * |    | summed in arrival order                      | (%.17g round trip, exact)                | |
 * | 13 | trailing spaces/tabs kept in the value       | trailing spaces, tabs and '\r' trimmed   | only '\r' (CRLF senders) is in the corpus, where both agree |
 *
 * DIFF_DUMP=1 prints every compared flush of both, as JSON.
 *
 * Output differences found by this test and still pending a fix are listed
 * in KNOWN_DIFFERENCES below (exact lines); the test fails if one listed
 * there no longer occurs, so the entry goes away with the fix.
 */
import assert from 'node:assert/strict';
import { after, describe, test } from 'node:test';
import { CarbonListener, sleep, type CarbonLine } from '../helpers/carbon.js';
import { cleanup, testPrefix } from '../helpers/redis.js';
import { groupByFlush, sendDatagrams, startEtsyStatsd, type EtsyStatsd } from '../helpers/statsd.js';
import { startDaemon, testConfig } from '../helpers/tallyd.js';
import type { Daemon } from '../../src/daemon.js';

const FLUSH_MS = 2000;
const FLUSH_S = FLUSH_MS / 1000;
/** Time planned for sending the corpus (it takes a few ms). */
const SEND_WINDOW_MS = 150;
/** Least planned distance between the send window and any flush of either daemon. */
const MIN_MARGIN_MS = 300;
/**
 * Least actual distance: tallyd merges its local batch every batchInterval
 * (100 ms in tests) plus a Redis round trip, statsd counts a datagram as soon
 * as it reads it.
 */
const MIN_REAL_MARGIN_MS = 200;
/** The corpus's bad lines are expected: keep tallyd's rate-limited warnings out of the output. */
const QUIET_LOG = { level: process.env['TEST_LOG_LEVEL'] ?? 'error' };

// ---- Corpus ---------------------------------------------------------------

function chunk<T>(a: readonly T[], n: number): T[][] {
  const out: T[][] = [];
  for (let i = 0; i < a.length; i += n) out.push(a.slice(i, i + n));
  return out;
}

/** 200 timer samples with repeats (101 distinct values, not exact in binary: timers are compared exactly anyway). */
const TIMER_MANY = Array.from({ length: 200 }, (_, i) => `t.many:${((i * 37) % 101) / 10 + 0.3}|ms`);

/** Datagrams, sent in this order; an entry with '\n' carries several lines. */
const CORPUS: readonly string[] = [
  // Counters: one line per datagram, then sample rates, negative, fractional, exponent and signed values.
  'req.count:1|c',
  'req.count:2|c',
  [
    'req.count:3|c|@0.5',
    'req.count:1|c|@0.1',
    'req.count:0.5|c|@0.25',
    'neg.counter:-3|c',
    'neg.counter:1.5|c',
    'neg.counter:-0.25|c',
    'frac:0.5|c',
    'frac:0.25|c',
    'plus:+4|c',
    'exp:1e3|c',
    'exp:2.5e-1|c',
    'zero.counter:0|c',
    // statsd's deleteCounters keeps (at 0) every counter whose name *contains* packets_received: so does tallyd.
    'app.packets_received.errors:1|c',
  ].join('\n'),
  // Gauges: set, then +/- deltas in the same period (also in later datagrams), delta-only, rate ignored.
  'g.temp:20|g',
  [
    'g.temp:+5|g',
    'g.temp:-3|g',
    'g.delta_only:-7|g',
    'g.delta_only:+2|g',
    'g.set_twice:1|g',
    'g.set_twice:42|g',
    'g.frac:0.5|g',
    'g.frac:+0.25|g',
    'g.zero_then_delta:0|g',
    'g.zero_then_delta:+3|g',
    'g.rate:3|g|@0.5',
    'g.neg_abs:-10|g',
  ].join('\n'),
  'g.temp:+1|g',
  // Timers: 1, 2, 3 samples (percentile edge cases), 0, non-binary fractions, sample rates, 200 samples.
  't.single:5|ms',
  [
    't.two:1|ms',
    't.two:3|ms',
    't.three:10|ms',
    't.three:30|ms',
    't.three:20|ms',
    't.zero:0|ms',
    't.frac:0.1|ms',
    't.frac:0.2|ms',
    't.sampled:4|ms|@0.5',
    't.sampled:6|ms|@0.25',
    't.sampled:8|ms|@0.1',
  ].join('\n'),
  ...chunk(TIMER_MANY, 50).map((lines) => lines.join('\n')),
  // Histogram targets (bins are exclusive upper bounds; values past the last finite bin are not counted).
  ['page.render:5|ms', 'page.render:50|ms', 'page.render:500|ms', 'page.render:99.5|ms', 'page.render:100|ms', 'page.render:10|ms'].join('\n'),
  ['api.latency:0.25|ms', 'api.latency:0.5|ms', 'api.latency:4.9|ms', 'api.latency:5|ms', 'api.latency:7|ms'].join('\n'),
  // Sets: repeated members, an empty member (statsd: '0'), rate ignored, members with spaces and '/'.
  'users:alice|s',
  'users:bob|s',
  [
    'users:alice|s',
    'users:carol|s|@0.5',
    'empty.set:|s',
    'empty.set:0|s',
    'numeric.set:1|s',
    'numeric.set:1|s',
    'numeric.set:2|s',
    'spaced.set:with space|s',
    'spaced.set:with/slash|s',
  ].join('\n'),
  // Multi-value lines: one name, several values (and types).
  ['mv.mix:1|c:250|ms:7|g', 'mv.rate:1|c|@0.5:2|c', 'mv.set:a|s:b|s:a|s'].join('\n'),
  // DogStatsD tags -> `name;k=v;flag` (statsd's ';'->'_' and ':'->'=' on the first of each, then sanitizing).
  [
    'tagged:1|c|#env:prod,canary',
    'tagged:2|c|#env:prod,canary',
    'tagged:1|c|#env:dev',
    'tagged.rate:1|c|@0.5|#region:eu-west',
    'tagged.t:12|ms|#route:/api/v1',
    'tagged.g:5|g|#a;b:c',
    'tagged.s:x|s|#k:v',
    'tagged.mv:1|c:2|ms|#k:v',
    'tagged.empty:1|c|#',
    'tagged.url:1|c|#url:http://x',
  ].join('\n'),
  // Names needing sanitizing (ASCII only, see 10); the first two collide once sanitized.
  [
    'my app/requests:1|c',
    'my_app-requests:1|c',
    'a@b!c:1|c',
    'multi   space:1|c',
    'tab\tname:1|c',
    'semi;colon:1|c',
    'name=eq:1|c',
    'path/to/timer:3|ms',
    'gauge with space:2|g',
    'set/with slash:m|s',
  ].join('\n'),
  // CRLF line ends, blank lines, a trailing newline.
  'crlf.count:1|c\r\ncrlf.timer:3|ms\r\ncrlf.rate:1|c|@0.5\r\n\n',
  // Malformed lines both reject (each counted once in bad_lines_seen by both).
  'nocolon',
  [
    'bad.value:abc|c',
    'bad.rate:1|c|@abc',
    'bad.neg_timer:-5|ms',
    'bad.notype:1',
    'bad.empty:|c',
    'bad.gauge:x|g',
    'bad.rate_neg:1|c|@-0.5',
    'bad.field:1|c|foo',
    'bad.timer_empty:|ms',
  ].join('\n'),
  // A good line after a bad one in the same datagram still lands.
  ['bad.value2:1.2.3|c', 'after.bad:1|c'].join('\n'),
  // Issue 10's answers. Numbers with surrounding whitespace are Number()'s; a gauge ' -2' is absolute, '-2 ' a delta.
  ['ws.count:2 |c', 'ws.timer: 3 |ms', 'ws.rate:\t4\u00a0|c|@0.5', 'ws.gauge:10|g', 'ws.gauge: -2|g', 'ws.delta:10|g', 'ws.delta:-2 |g', 'ws.multi: 1|c: 2 |c'].join('\n'),
  // A multi-value line with bad values keeps the good ones and counts each bad one.
  ['mvbad.c:1|c:x|c', 'mvbad.t:5|ms:x|ms:7|ms:-1|ms', 'mvbad.g:x|g:4|g'].join('\n'),
  // Unicode whitespace runs in names become '_' (JavaScript \\s), other non-ASCII is dropped.
  ['uni\u00a0space:1|c', 'uni\u3000\u3000ideo:1|c', '\ufeffbom.lead:1|c', 'uni\u00a0\u00e9\u2009mix:2|c', 'uni \u2028tab\tline:3|ms', 'uni\u202fg:5|g'].join('\n'),
  // Counter sums that overflow: Infinity in both, never NaN.
  ['ovf.count:1e308|c', 'ovf.count:1e308|c', 'ovf.neg:-1e308|c\novf.neg:-1e308|c'].join('\n'),
  'ovf.count:1e308|c',
];

// ---- Configs --------------------------------------------------------------

interface Case {
  readonly id: string;
  /** statsd config keys, given to both (tallyd through testConfig's overrides). */
  readonly options: Record<string, unknown>;
  /** Flushes compared: the one holding the corpus and the ones after it. */
  readonly flushes: number;
}

const HISTOGRAM = [
  { metric: 'render', bins: [10, 100, 'inf'] },
  { metric: 'api', bins: [0.5, 5] },
];

const CASES: readonly Case[] = [
  { id: 'defaults', options: {}, flushes: 2 },
  {
    id: 'new-namespace',
    options: {
      graphite: {
        legacyNamespace: false,
        globalPrefix: 'pfx',
        prefixCounter: 'cnt',
        prefixTimer: 'tmr',
        prefixGauge: 'gg',
        prefixSet: 'st',
        globalSuffix: 'host1',
      },
      prefixStats: 'mystats',
    },
    flushes: 2,
  },
  { id: 'percentiles-histogram', options: { percentThreshold: [90, 50, -10, 99.9], histogram: HISTOGRAM }, flushes: 2 },
  {
    id: 'calculated-timer-metrics',
    // upper_99_9 is filtered out by statsd's /_(top)?\d+$/ (it becomes 'upper_99_percent'): both must agree.
    options: {
      percentThreshold: [90, -10, 99.9],
      histogram: HISTOGRAM,
      calculatedTimerMetrics: ['count', 'mean', 'upper_percent', 'lower_percent', 'histogram'],
    },
    flushes: 2,
  },
  { id: 'delete-idle-stats', options: { deleteIdleStats: true }, flushes: 2 },
  // A gauge updated in flush P is sent in P, P+1, P+2 and gone from P+3: compare 4 flushes to see it go.
  { id: 'delete-gauges-ttl3', options: { deleteGauges: true, gaugesMaxTTL: 3 }, flushes: 4 },
  { id: 'no-counts-no-sanitize', options: { flush_counts: false, keyNameSanitize: false }, flushes: 2 },
];

// ---- Known output differences pending a fix -------------------------------

interface KnownDifference {
  readonly id: string;
  readonly reason: string;
  readonly config: string;
  /** Index of the compared flush (0 = the one holding the corpus). */
  readonly flush: number;
  readonly statsdOnly: readonly string[];
  readonly tallydOnly: readonly string[];
}

// Differences still to fix, as exact lines; empty when tallyd matches statsd everywhere it should.
const KNOWN_DIFFERENCES: readonly KnownDifference[] = [];

// ---- Comparison -----------------------------------------------------------

const MASKED = /\.(processing_time|timestamp_lag|graphiteStats\.(calculationtime|last_exception|last_flush|flush_time|flush_length))(\.|;|$)/;
const NUM_STATS = /(^|\.)numStats(\.|$)/;
const FLUSH_LENGTH = /\.graphiteStats\.flush_length(\.|$)/;

function normalize(lines: readonly CarbonLine[]): string[] {
  return lines.map((l) => `${l.name} ${MASKED.test(l.name) ? '*' : l.value}`).sort();
}

/** Multiset difference a - b. */
function minus(a: readonly string[], b: readonly string[]): string[] {
  const left = new Map<string, number>();
  for (const x of b) left.set(x, (left.get(x) ?? 0) + 1);
  const out: string[] = [];
  for (const x of a) {
    const n = left.get(x) ?? 0;
    if (n > 0) left.set(x, n - 1);
    else out.push(x);
  }
  return out;
}

function numStatsTs(carbon: CarbonLine[]): number[] {
  return carbon.filter((l) => NUM_STATS.test(l.name)).map((l) => l.ts);
}

/** A flush has fully arrived: its numStats line, and flush_length (the last line both send). */
function flushArrived(lines: readonly CarbonLine[], ts: number): boolean {
  return (
    lines.some((l) => l.ts === ts && NUM_STATS.test(l.name)) &&
    lines.some((l) => l.ts >= ts && l.ts < ts + FLUSH_S && FLUSH_LENGTH.test(l.name))
  );
}

// ---- Timing ---------------------------------------------------------------

/** Flush moments (ms) of a schedule with the given phase, covering [from, to]. */
function events(phaseMs: number, from: number, to: number): number[] {
  const out: number[] = [];
  for (let t = phaseMs + Math.floor((from - phaseMs) / FLUSH_MS) * FLUSH_MS; t <= to; t += FLUSH_MS) out.push(t);
  return out;
}

/** Distance between the window [t, t + SEND_WINDOW_MS] and the nearest event (0 if one falls inside). */
function margin(t: number, evs: readonly number[]): number {
  let best = Infinity;
  for (const e of evs) {
    const d = e < t ? t - e : e > t + SEND_WINDOW_MS ? e - (t + SEND_WINDOW_MS) : 0;
    best = Math.min(best, d);
  }
  return best;
}

/**
 * The send moment in the next flushInterval farthest from every flush of
 * statsd (phase from its first flush's ts) and of tallyd (multiples of
 * flushInterval).
 */
function pickSendTime(now: number, statsdPhaseMs: number): { at: number; margin: number } {
  const from = now + 20;
  const evs = [...events(statsdPhaseMs, from - FLUSH_MS, from + 2 * FLUSH_MS), ...events(0, from - FLUSH_MS, from + 2 * FLUSH_MS)];
  let best = { at: from, margin: -1 };
  for (let t = from; t < from + FLUSH_MS; t += 10) {
    const m = margin(t, evs);
    if (m > best.margin) best = { at: t, margin: m };
  }
  return best;
}

// ---- Runner ---------------------------------------------------------------

const liveStatsd = new Set<EtsyStatsd>();
const liveDaemons = new Set<Daemon>();
const liveCarbons = new Set<CarbonListener>();
const prefixes: string[] = [];

after(async () => {
  for (const s of liveStatsd) await s.kill();
  for (const d of liveDaemons) await d.stop().catch(() => undefined);
  for (const c of liveCarbons) await c.stop();
  for (const p of prefixes) await cleanup(p);
});

interface Collected {
  statsd: string[][];
  tallyd: string[][];
}

async function runCase(c: Case): Promise<Collected> {
  const prefix = testPrefix(`diff-${c.id}`);
  prefixes.push(prefix);
  const sCarbon = new CarbonListener();
  const tCarbon = new CarbonListener();
  liveCarbons.add(sCarbon).add(tCarbon);
  await sCarbon.start();
  await tCarbon.start();
  // tallyd first: the wait for statsd's first flush then starts right after statsd does.
  const daemon = await startDaemon(testConfig(prefix, tCarbon.port, { flushInterval: FLUSH_MS, log: QUIET_LOG, ...c.options }));
  liveDaemons.add(daemon);
  const statsd = await startEtsyStatsd(sCarbon.port, FLUSH_MS, c.options);
  liveStatsd.add(statsd);
  const tallydPort = daemon.ports.udp[0];
  assert.ok(tallydPort !== undefined, 'tallyd has a udp port');
  try {
    // statsd flushes every interval from its (whole-second) start time, even with no input.
    await sCarbon.waitFor(() => numStatsTs(sCarbon.lines).length > 0, 10_000, `statsd's first flush\n${statsd.output()}`);
    const arrival = Date.now();
    const firstTs = Math.min(...numStatsTs(sCarbon.lines));
    // Its ts is the flush moment rounded to the second; the flush arrives just after it.
    assert.ok(Math.abs(arrival - firstTs * 1000) < 700, `statsd's first flush ts ${firstTs} vs arrival ${arrival}`);
    const statsdPhase = (firstTs * 1000) % FLUSH_MS;

    const pick = pickSendTime(Date.now(), statsdPhase);
    assert.ok(pick.margin >= MIN_MARGIN_MS, `no send moment ${MIN_MARGIN_MS} ms from both flush schedules: ${JSON.stringify(pick)}`);
    await sleep(pick.at - Date.now()); // a moment of the wall clock (the scenario), not a result
    const sentAt = Date.now();
    await Promise.all([sendDatagrams(statsd.udpPort, CORPUS), sendDatagrams(tallydPort, CORPUS)]);
    const sentEnd = Date.now();
    // What matters is where the sending really happened (a late timer or a slow send shows here).
    const evs = [...events(statsdPhase, sentAt - FLUSH_MS, sentEnd + FLUSH_MS), ...events(0, sentAt - FLUSH_MS, sentEnd + FLUSH_MS)];
    const real = Math.min(...evs.map((e) => (e < sentAt ? sentAt - e : e > sentEnd ? e - sentEnd : 0)));
    assert.ok(real >= MIN_REAL_MARGIN_MS, `sent in [${sentAt}, ${sentEnd}], ${real} ms from a flush (planned ${pick.at}, margin ${pick.margin})`);

    // The flush of each that holds the corpus, then the next ones.
    const statsdFirst = events(statsdPhase, sentEnd, sentEnd + FLUSH_MS).find((e) => e > sentEnd);
    assert.ok(statsdFirst !== undefined);
    const sTs = Array.from({ length: c.flushes }, (_, i) => statsdFirst / 1000 + i * FLUSH_S);
    const tFirst = (Math.floor(sentAt / FLUSH_MS) + 1) * FLUSH_MS;
    const tTs = Array.from({ length: c.flushes }, (_, i) => tFirst / 1000 + i * FLUSH_S);

    const deadline = (c.flushes + 2) * FLUSH_MS;
    await sCarbon.waitFor(() => sTs.every((ts) => flushArrived(sCarbon.lines, ts)), deadline, `statsd flushes ${sTs.join(', ')}`);
    await tCarbon.waitFor(() => tTs.every((ts) => flushArrived(tCarbon.lines, ts)), deadline, `tallyd flushes ${tTs.join(', ')}`);

    const sGroups = groupByFlush(sCarbon.lines, sTs, FLUSH_S);
    const tGroups = groupByFlush(tCarbon.lines, tTs, FLUSH_S);
    const collected: Collected = {
      statsd: sTs.map((ts) => normalize(sGroups.get(ts) ?? [])),
      tallyd: tTs.map((ts) => normalize(tGroups.get(ts) ?? [])),
    };

    // The whole corpus landed in the first compared flush of statsd (the reference).
    const packets = collected.statsd[0]?.filter((l) => l.includes('packets_received') && !l.includes('.errors')) ?? [];
    assert.ok(
      packets.some((l) => l.endsWith(` ${CORPUS.length / FLUSH_S}`)),
      `statsd flush ${sTs[0]} holds all ${CORPUS.length} datagrams: ${packets.join(' | ')}`,
    );
    return collected;
  } finally {
    await statsd.kill();
    liveStatsd.delete(statsd);
    await daemon.stop();
    liveDaemons.delete(daemon);
    await sCarbon.stop();
    await tCarbon.stop();
    liveCarbons.delete(sCarbon);
    liveCarbons.delete(tCarbon);
    await cleanup(prefix);
  }
}

function compare(c: Case, got: Collected): void {
  for (let i = 0; i < c.flushes; i++) {
    const s = got.statsd[i] ?? [];
    const t = got.tallyd[i] ?? [];
    let statsdOnly = minus(s, t);
    let tallydOnly = minus(t, s);
    for (const k of KNOWN_DIFFERENCES.filter((d) => d.config === c.id && d.flush === i)) {
      const stale = [...minus(k.statsdOnly, statsdOnly), ...minus(k.tallydOnly, tallydOnly)];
      assert.deepEqual(stale, [], `known difference ${k.id} no longer occurs in flush +${i}: remove it from KNOWN_DIFFERENCES`);
      statsdOnly = minus(statsdOnly, k.statsdOnly);
      tallydOnly = minus(tallydOnly, k.tallydOnly);
    }
    assert.deepEqual({ statsdOnly, tallydOnly }, { statsdOnly: [], tallydOnly: [] }, `config ${c.id}, flush +${i}: ${s.length} statsd lines, ${t.length} tallyd lines`);
  }
}

describe('differential: tallyd vs Etsy statsd 0.9, same datagrams', { concurrency: 1 }, () => {
  for (const c of CASES) {
    test(c.id, { timeout: 30_000 }, async () => {
      const got = await runCase(c);
      if (process.env['DIFF_DUMP'] === '1') console.log(JSON.stringify({ id: c.id, ...got }, null, 1));
      compare(c, got);
      // Sanity: the corpus flush is not trivially empty.
      assert.ok((got.statsd[0]?.length ?? 0) > 100, `statsd's corpus flush has ${got.statsd[0]?.length} lines`);
    });
  }
});

// statsd keeps metrics in plain objects, so these names break it (see 11):
// tallyd alone must treat them like any other name. Each gets the same lines
// as an ordinary alias in the same period; their output must match the
// alias's with the name swapped back.
const PROTO_NAMES = ['constructor', '__proto__', 'toString', 'hasOwnProperty', 'valueOf', 'prototype'] as const;

function protoLines(name: string): string[] {
  return [`${name}:1|c`, `${name}:2|c|@0.5`, `${name}:5|ms`, `${name}:7|ms`, `${name}:3|g`, `${name}:+1|g`, `${name}:m|s`, `${name}:n|s`, `tag.${name}:1|c|#${name}:${name}`];
}

/** The metric name of a `name value` line, split into its '.', ';' and '=' separated parts. */
function nameParts(line: string): string[] {
  return (line.split(' ')[0] ?? '').split(/[.;=]/);
}

function hasPart(line: string, part: string): boolean {
  return nameParts(line).includes(part);
}

function swapPart(line: string, from: string, to: string): string {
  const space = line.indexOf(' ');
  return line.slice(0, space).split(/([.;=])/).map((p) => (p === from ? to : p)).join('') + line.slice(space);
}

test('tallyd alone: prototype-like names are ordinary names', { timeout: 20_000 }, async () => {
  const interval = 1000;
  const prefix = testPrefix('diff-proto');
  prefixes.push(prefix);
  const carbon = new CarbonListener();
  liveCarbons.add(carbon);
  await carbon.start();
  const daemon = await startDaemon(testConfig(prefix, carbon.port, { flushInterval: interval, log: QUIET_LOG }));
  liveDaemons.add(daemon);
  try {
    const port = daemon.ports.udp[0];
    assert.ok(port !== undefined);
    // Send 300 ms after a boundary, so everything lands in the period ending at the next one.
    const boundary = (Math.floor(Date.now() / interval) + 1) * interval;
    await sleep(boundary + 300 - Date.now()); // a moment of the wall clock, not a result
    const aliases = PROTO_NAMES.map((_, i) => `alias${i}`);
    await sendDatagrams(port, [...PROTO_NAMES.map((n) => protoLines(n).join('\n')), ...aliases.map((a) => protoLines(a).join('\n'))]);
    const tsList = [boundary / 1000 + 1, boundary / 1000 + 2];
    await carbon.waitFor(() => tsList.every((ts) => carbon.lines.some((l) => l.ts === ts && FLUSH_LENGTH.test(l.name))), 5000, 'two flushes');

    for (const [i, ts] of tsList.entries()) {
      const lines = normalize(carbon.lines.filter((l) => l.ts === ts));
      for (const [j, name] of PROTO_NAMES.entries()) {
        const alias = aliases[j] ?? '';
        const expected = lines.filter((l) => hasPart(l, alias)).map((l) => swapPart(l, alias, name)).sort();
        const got = lines.filter((l) => hasPart(l, name)).sort();
        assert.ok(expected.length >= (i === 0 ? 15 : 5), `alias lines for ${name}: ${expected.join(' | ')}`);
        assert.deepEqual(got, expected, `flush +${i}, name ${name}`);
      }
    }
    // Spot checks of the values: 1 + 2/0.5 = 5, gauge 3 + 1, two set members.
    const first = normalize(carbon.lines.filter((l) => l.ts === tsList[0]));
    for (const name of PROTO_NAMES) {
      for (const l of [`stats_counts.${name} 5`, `stats.gauges.${name} 4`, `stats.sets.${name}.count 2`, `stats.timers.${name}.upper 7`, `stats_counts.tag.${name};${name}=${name} 1`]) {
        assert.ok(first.includes(l), `missing '${l}'`);
      }
    }
  } finally {
    await daemon.stop();
    liveDaemons.delete(daemon);
    await carbon.stop();
    liveCarbons.delete(carbon);
    await cleanup(prefix);
  }
});
