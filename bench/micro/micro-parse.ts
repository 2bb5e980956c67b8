/**
 * Micro-benchmark of the ingest hot path without sockets or Redis: datagram
 * Buffers -> StatsdLineParser.parsePacket -> Batch, with encodeMerge (the
 * merge-8 ARGV) and a fresh Batch every --merge-every lines, as the batcher
 * does every batchInterval.
 *
 *   node --import tsx bench/micro/micro-parse.ts [--modes counters-1,counters-32,mixed-1,mixed-32,unique-32]
 *        [--runs 7] [--lines 1000000] [--merge-every 40000] [--shards 1] [--no-sanitize] [--via-name] [--zmq-general] [--json]
 *
 * Corpus (fixed seed): 1,000 distinct names per type (`bench.c.123`, `bench.t.7`,
 * `bench.g.9`, `bench.s.4`, like bench/lib/load.ts); mixed is c 70 / ms 20 / g 5 / s 5.
 * 10 % of counter and timer lines carry `|@0.5`, 10 % of all lines `|#env:prod,az:<0..3>`,
 * a fifth of the gauges are `+`/`-` deltas, set members are `u<0..4999>`.
 * timers-N, gauges-N and sets-N (not in the default list) take one type only.
 * `unique-32` (not in the default list either) gives every line its own name (262,144 of them,
 * cycled): the cost when names never repeat.
 * `zmq-N` (not in the default list) runs ZeroMQ status messages instead of datagrams: N counter items
 * `{name, value, time, type: "c"}` per zlib-deflated JSON message, as bench/lib/load.ts sends them, through
 * ZmqServer.onMessage (inflate, JSON, item checks, the aggregate sink) into the Batch; lines/s counts items.
 * They take the fast path (the native addon's scanner) when the addon is built; --zmq-general sends every
 * message through the general path (JSON.parse + zmq-item.ts), as without the addon.
 * --via-name puts a forwarder between parser and Batch that passes name,
 * value and rate but not the intern key id, like a SampleSink that only knows
 * names (the Batcher, unless it forwards the key): the Batch then finds each
 * sample's slot by hashing the name.
 * --shards N splits each merge by shard as the Batcher does at seal time
 * (encodeMergeParts, one ARGV per shard; redis.shards defaults to 16); the
 * default 1 is the one-ARGV encoding.
 *
 * Figures:
 * - lines/s: the median of --runs timed runs of --lines lines (after one warm-up run), default GC settings.
 * - B/line: JS heap bytes allocated per line, over separate runs with v8.GCProfiler on:
 *   (heap used at the end - at the start) + what every GC in between freed
 *   (used before - used after), so it counts garbage that was allocated and
 *   collected, not only what survived. Buffer backing stores (off-heap, e.g. the
 *   packed timer samples) are not included. Median of 3 runs.
 * - GC %: the GCProfiler's summed GC cost over wall time in those runs.
 */
import v8 from 'node:v8';
import { Batch } from '../../src/aggregate/batch.js';
import { encodeMergeParts } from '../../src/aggregate/merge-args.js';
import { ShardMap } from '../../src/store/shards.js';
import type { SampleSink } from '../../src/parse/sample-sink.js';
import { StatsdLineParser } from '../../src/parse/statsd-line.js';
import { deflateSync } from 'node:zlib';
import { ZmqServer } from '../../src/ingest/zmq.js';
import { createLogger } from '../../src/observability/logger.js';
import { SelfStats } from '../../src/observability/self-stats.js';
import { xorshift } from '../lib/load.js';

type Type = 'c' | 'ms' | 'g' | 's';

interface Scenario {
  readonly name: string;
  readonly datagrams: Buffer[];
  readonly lines: number;
  /** The datagrams are ZeroMQ messages (zmq-N). */
  readonly zmq?: boolean;
}

/** zmq-N: 32,768 counter items over 1,000 names, N per deflated JSON message. */
function zmqScenario(spec: string, per: number): Scenario {
  const rand = xorshift(0x7a11d);
  const datagrams: Buffer[] = [];
  let items: Array<{ name: string; value: number; time: number; type: string }> = [];
  for (let j = 0; j < CORPUS_LINES; j++) {
    items.push({ name: `bench.c.${rand() % NAMES}`, value: 1 + (rand() % 3), time: 1796000000, type: 'c' });
    if (items.length === per || j === CORPUS_LINES - 1) {
      datagrams.push(deflateSync(Buffer.from(JSON.stringify(items), 'utf8')));
      items = [];
    }
  }
  return { name: spec, datagrams, lines: CORPUS_LINES, zmq: true };
}

const MIXES: Record<string, Record<Type, number>> = {
  counters: { c: 1, ms: 0, g: 0, s: 0 },
  timers: { c: 0, ms: 1, g: 0, s: 0 },
  gauges: { c: 0, ms: 0, g: 1, s: 0 },
  sets: { c: 0, ms: 0, g: 0, s: 1 },
  mixed: { c: 70, ms: 20, g: 5, s: 5 },
  unique: { c: 1, ms: 0, g: 0, s: 0 },
};

const NAMES = 1000;
const CORPUS_LINES = 32_768;
const UNIQUE_LINES = 262_144;

function buildScenario(spec: string): Scenario {
  const z = /^zmq-(\d+)$/.exec(spec);
  if (z) return zmqScenario(spec, Math.max(1, Number(z[1])));
  const m = /^(counters|timers|gauges|sets|mixed|unique)-(\d+)$/.exec(spec);
  const mix = m ? MIXES[m[1]!] : undefined;
  const per = m ? Number(m[2]) : 0;
  if (!m || !mix || !(per >= 1 && per <= 1000)) throw new Error(`bad mode ${spec}: want <counters|timers|gauges|sets|mixed|unique>-N`);
  const unique = m[1] === 'unique';
  const rand = xorshift(0x7a11d);
  const types: Type[] = ['c', 'ms', 'g', 's'];
  const total = types.reduce((a, t) => a + mix[t], 0);
  const lines = unique ? UNIQUE_LINES : CORPUS_LINES;
  const datagrams: Buffer[] = [];
  let text: string[] = [];
  for (let j = 0; j < lines; j++) {
    let pick = (rand() / 0x100000000) * total;
    let k = 0;
    while (k < 3 && pick >= mix[types[k]!]) pick -= mix[types[k++]!];
    while (mix[types[k]!] === 0) k = (k + 1) % 4;
    const type = types[k]!;
    const idx = unique ? j : rand() % NAMES;
    const name = unique ? `bench.u.${idx}` : `bench.${type === 'ms' ? 't' : type}.${idx}`;
    let value: string;
    if (type === 'c') value = String(1 + (rand() % 3));
    else if (type === 'ms') value = String((rand() % 100_000) / 100);
    else if (type === 'g') value = (rand() % 5 === 0 ? (rand() % 2 === 0 ? '+' : '-') : '') + String(rand() % 100_000);
    else value = `u${rand() % 5000}`;
    let line = `${name}:${value}|${type}`;
    if ((type === 'c' || type === 'ms') && rand() % 10 === 0) line += '|@0.5';
    if (rand() % 10 === 0) line += `|#env:prod,az:${rand() % 4}`;
    text.push(line);
    if (text.length === per) {
      datagrams.push(Buffer.from(text.join('\n'), 'utf8'));
      text = [];
    }
  }
  if (text.length > 0) datagrams.push(Buffer.from(text.join('\n'), 'utf8'));
  return { name: spec, datagrams, lines };
}

interface Options {
  modes: string[];
  runs: number;
  lines: number;
  mergeEvery: number;
  sanitize: boolean;
  viaName: boolean;
  json: boolean;
  shards: number;
}

function parseArgs(argv: string[]): Options {
  const o: Options = { modes: ['counters-1', 'counters-32', 'mixed-1', 'mixed-32'], runs: 7, lines: 1_000_000, mergeEvery: 40_000, sanitize: true, viaName: false, json: false, shards: 1 };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const next = (): string => {
      const v = argv[++i];
      if (v === undefined) throw new Error(`${a} needs a value`);
      return v;
    };
    if (a === '--modes') o.modes = next().split(',');
    else if (a === '--runs') o.runs = Math.max(1, Number(next()));
    else if (a === '--lines') o.lines = Math.max(1000, Number(next()));
    else if (a === '--merge-every') o.mergeEvery = Math.max(1, Number(next()));
    else if (a === '--no-sanitize') o.sanitize = false;
    else if (a === '--via-name') o.viaName = true;
    else if (a === '--json') o.json = true;
    else if (a === '--shards') o.shards = Number(next());
    else if (a === '--zmq-general') zmqFast = false;
    else throw new Error(`unknown argument ${a}`);
  }
  return o;
}

/** Keeps the work observable so nothing is optimised away. */
let blackhole = 0;

/**
 * Forwards samples to the current batch: by name only (see --via-name), or with their intern key ids, as the
 * daemon's Batcher gets them (the ZeroMQ modes, whose server keeps this sink across merges).
 */
class NameOnly implements SampleSink {
  batch = new Batch();
  constructor(private readonly keys = false) {}
  passthrough(line: string): void {
    this.batch.passthrough(line);
  }
  counter(name: string, value: number, rate: number, key?: number): void {
    this.batch.counter(name, value, rate, this.keys ? key : undefined);
  }
  gauge(name: string, value: number, delta: boolean, key?: number): void {
    this.batch.gauge(name, value, delta, this.keys ? key : undefined);
  }
  timer(name: string, value: number, rate: number, key?: number): void {
    this.batch.timer(name, value, rate, this.keys ? key : undefined);
  }
  set(name: string, member: string): void {
    this.batch.set(name, member);
  }
}

let viaName = false;
let zmqFast = true;
let shardMap = new ShardMap(1);

/** The merge ARGV of a sealed batch, split by shard as the Batcher does; returns the number of args (kept). */
function encode(batch: Batch): number {
  let n = 0;
  for (const part of encodeMergeParts(batch, shardMap.count, (name) => shardMap.of(name))) n += part.args.length;
  return n;
}

/** Feeds `lines` lines (whole datagrams) through parser + Batch + encodeMerge; returns wall ms. */
function run(sc: Scenario, parser: StatsdLineParser, lines: number, mergeEvery: number): number {
  const dgrams = sc.datagrams;
  const perDgram = sc.lines / dgrams.length;
  const packets = Math.ceil(lines / perDgram);
  const packetsPerMerge = Math.max(1, Math.round(mergeEvery / perDgram));
  const fwd = new NameOnly(sc.zmq === true && !viaName);
  let batch = fwd.batch;
  let sink: SampleSink = viaName ? fwd : batch;
  const zmq = sc.zmq ? zmqServer(parser, fwd) : null;
  let d = 0;
  const t0 = process.hrtime.bigint();
  for (let p = 0; p < packets; p++) {
    const buf = dgrams[d]!;
    if (zmq) zmq.onMessage([buf]);
    else parser.parsePacket(buf, 0, buf.length, sink);
    if (++d === dgrams.length) d = 0;
    if ((p + 1) % packetsPerMerge === 0) {
      blackhole += encode(batch);
      fwd.batch = batch = new Batch();
      if (!viaName) sink = batch;
    }
  }
  blackhole += encode(batch);
  return Number(process.hrtime.bigint() - t0) / 1e6;
}

/** A ZmqServer that is never started: onMessage is the whole receive path after libzmq. */
function zmqServer(parser: StatsdLineParser, sink: NameOnly): ZmqServer {
  const cfg = { server: 'zmq', bind: 'tcp://127.0.0.1:0', type: 'pull', mode: 'aggregate', prefix: '', maxMessageSize: 1 << 20, highWaterMark: 1000 } as const;
  const server = new ZmqServer(cfg, true, parser, sink, new SelfStats(), createLogger('silent'), zmqFast);
  return server;
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const mid = s.length >> 1;
  return s.length % 2 === 1 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
}

/** One run under v8.GCProfiler: JS heap bytes allocated per line and the share of wall time spent in GC. */
function allocRun(sc: Scenario, parser: StatsdLineParser, lines: number, mergeEvery: number): { bytesPerLine: number; gcPct: number } {
  const gc = (globalThis as { gc?: () => void }).gc;
  if (gc) gc();
  const profiler = new v8.GCProfiler();
  const before = v8.getHeapStatistics().used_heap_size;
  profiler.start();
  const ms = run(sc, parser, lines, mergeEvery);
  const after = v8.getHeapStatistics().used_heap_size;
  const stats = profiler.stop();
  let freed = 0;
  let gcUs = 0;
  for (const s of stats.statistics) {
    freed += s.beforeGC.heapStatistics.usedHeapSize - s.afterGC.heapStatistics.usedHeapSize;
    gcUs += s.cost;
  }
  return { bytesPerLine: (after - before + freed) / lines, gcPct: (100 * gcUs) / 1000 / ms };
}

interface Result {
  mode: string;
  linesPerSec: number;
  minLinesPerSec: number;
  maxLinesPerSec: number;
  nsPerLine: number;
  bytesPerLine: number;
  gcPct: number;
}

function measure(sc: Scenario, o: Options): Result {
  const parser = new StatsdLineParser({ keyNameSanitize: o.sanitize });
  run(sc, parser, Math.min(o.lines, 200_000), o.mergeEvery); // warm-up: JIT, and every name seen once
  const rates: number[] = [];
  for (let r = 0; r < o.runs; r++) rates.push(o.lines / (run(sc, parser, o.lines, o.mergeEvery) / 1000));
  const allocs = [0, 1, 2].map(() => allocRun(sc, parser, o.lines, o.mergeEvery));
  if (parser.badLines !== 0) throw new Error(`${sc.name}: ${parser.badLines} bad lines in the corpus`);
  const rate = median(rates);
  return {
    mode: sc.name,
    linesPerSec: rate,
    minLinesPerSec: Math.min(...rates),
    maxLinesPerSec: Math.max(...rates),
    nsPerLine: 1e9 / rate,
    bytesPerLine: median(allocs.map((a) => a.bytesPerLine)),
    gcPct: median(allocs.map((a) => a.gcPct)),
  };
}

function fmt(n: number): string {
  return Math.round(n).toLocaleString('en-US');
}

function main(): void {
  const o = parseArgs(process.argv.slice(2));
  viaName = o.viaName;
  shardMap = new ShardMap(o.shards);
  const results: Result[] = [];
  if (!o.json) {
    console.log(`node ${process.version}, keyNameSanitize ${o.sanitize}${o.viaName ? ', via a name-only sink' : ''}, ${o.runs} runs x ${fmt(o.lines)} lines, merge every ${fmt(o.mergeEvery)} lines, ${o.shards} shard(s)`);
    console.log('mode          lines/s (median)   min..max                ns/line   B/line   GC %');
  }
  for (const spec of o.modes) {
    const r = measure(buildScenario(spec), o);
    results.push(r);
    if (!o.json) {
      console.log(
        `${r.mode.padEnd(13)} ${fmt(r.linesPerSec).padStart(16)}   ${`${fmt(r.minLinesPerSec)}..${fmt(r.maxLinesPerSec)}`.padEnd(22)} ${r.nsPerLine.toFixed(0).padStart(7)} ${r.bytesPerLine.toFixed(1).padStart(8)} ${r.gcPct.toFixed(1).padStart(6)}`,
      );
    }
  }
  if (o.json) console.log(JSON.stringify({ node: process.version, options: o, results }, null, 2));
  if (blackhole === 0) console.log('');
}

main();
