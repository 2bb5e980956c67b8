/**
 * The split of a sealed batch by shard (encodeMergeParts): every name (tags
 * included, as stored) and every passthrough line lands in the part of its
 * own shard and nowhere else; the parts together are exactly the one-shard
 * ARGV; each part says how many samples it carries; a shard with nothing gets
 * no part; the shard of a name is computed once per distinct name, never per
 * sample.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Batch } from '../../src/aggregate/batch.js';
import { encodeMerge, encodeMergeParts, type MergeArg } from '../../src/aggregate/merge-args.js';
import type { SampleSink } from '../../src/parse/sample-sink.js';
import { StatsdLineParser } from '../../src/parse/statsd-line.js';
import { FIELD_SEP } from '../../src/store/keys.js';
import { readParts } from '../../src/store/packed-parts.js';
import { ShardMap } from '../../src/store/shards.js';

/** mergeBatch-11's ARGV (from ARGV[10] on) as sections, each a list of items (an item: its parts joined by ' '). */
interface Sections {
  counters: string[];
  timers: string[];
  timerCounts: string[];
  gauges: string[];
  sets: string[];
  passthrough: string[];
}

function decode(args: readonly MergeArg[]): Sections {
  const d: Sections = { counters: [], timers: [], timerCounts: [], gauges: [], sets: [], passthrough: [] };
  let names = 0;
  for (const part of args.slice(0, 2)) {
    assert.ok(Buffer.isBuffer(part) || part === '', 'a packed part or none');
    if (!Buffer.isBuffer(part)) continue;
    readParts(part, {
      part: () => {},
      end: () => {},
      counter: (n, v) => d.counters.push(`${n} ${v}`),
      timer: (n, count, samples, from, to) => {
        d.timerCounts.push(`${n} ${count}`);
        d.timers.push(`${n} ${[...samples.subarray(from, to)].join(',')}`);
      },
      gauge: () => assert.fail('gauges travel as ARGV'),
      set: (n, members) => {
        for (const m of members) d.sets.push(`${n}${FIELD_SEP}${m}`);
      },
    });
    if (part === args[0]) names = d.counters.length + d.timers.length + new Set(d.sets.map(nameOf)).size;
  }
  assert.equal(Number(args[2]), names, "the part's name count");
  let at = 4;
  const section = (width: number): string[] => {
    const n = Number(args[at++]);
    assert.ok(Number.isInteger(n) && n >= 0, `a section count at ${at - 1}: ${String(args[at - 1])}`);
    const items: string[] = [];
    for (let i = 0; i < n; i++) {
      items.push(args.slice(at, at + width).map(String).join(' '));
      at += width;
    }
    return items;
  };
  d.gauges = section(3);
  const chunks = section(2);
  assert.equal(at, args.length, 'nothing after the passthrough section');
  d.passthrough = chunks.flatMap((item) => {
    const sp = item.lastIndexOf(' ');
    const lines = item.slice(0, sp).split('\n').filter((l) => l !== '');
    assert.equal(Number(item.slice(sp + 1)), lines.length, 'a passthrough chunk carries its line count');
    return lines;
  });
  return d;
}

/** The stored name an item is about: before the first ' ' (counters, gauges) or the field separator (timers, sets). */
function nameOf(item: string): string {
  const sep = item.indexOf(FIELD_SEP);
  const sp = item.indexOf(' ');
  return item.slice(0, sep >= 0 && (sp < 0 || sep < sp) ? sep : sp);
}

/** Counts each stored name's samples per type on its way into the batch. */
class Counting implements SampleSink {
  readonly samples = new Map<string, number>();
  constructor(private readonly batch: Batch) {}
  private bump(key: string): void {
    this.samples.set(key, (this.samples.get(key) ?? 0) + 1);
  }
  counter(name: string, value: number, rate: number, key?: number): void {
    this.bump(`c ${name}`);
    this.batch.counter(name, value, rate, key);
  }
  gauge(name: string, value: number, delta: boolean, key?: number): void {
    this.bump(`g ${name}`);
    this.batch.gauge(name, value, delta, key);
  }
  timer(name: string, value: number, rate: number, key?: number): void {
    this.bump(`t ${name}`);
    this.batch.timer(name, value, rate, key);
  }
  set(name: string, member: string): void {
    this.bump(`s ${name}`);
    this.batch.set(name, member);
  }
  passthrough(line: string): void {
    this.bump(`p ${line}`);
    this.batch.passthrough(line);
  }
}

/** xorshift32, fixed seed: the same stream every run. */
function rand(seed: number): () => number {
  let x = seed;
  return () => {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    return (x >>> 0) / 0x100000000;
  };
}

/** ~30,000 samples over 4,000 names of every type, a third with tags, repeats and sample rates; 200 passthrough lines. */
function filledBatch(): { batch: Batch; counting: Counting } {
  const r = rand(0x5eed);
  const parser = new StatsdLineParser({ keyNameSanitize: true });
  const batch = new Batch();
  const counting = new Counting(batch);
  const lines: string[] = [];
  for (let i = 0; i < 30_000; i++) {
    const n = Math.floor(r() * 1000);
    const tags = n % 3 === 0 ? `|#env:prod,az:${n % 4}` : '';
    switch (Math.floor(r() * 4)) {
      case 0:
        lines.push(`split.c.${n}:${1 + (i % 5)}|c${i % 7 === 0 ? '|@0.5' : ''}${tags}`);
        break;
      case 1:
        lines.push(`split.t.${n}:${i % 100}|ms${tags}`);
        break;
      case 2:
        lines.push(`split.g.${n}:${i % 3 === 0 ? '+' : ''}${i % 50}|g${tags}`);
        break;
      default:
        lines.push(`split.s.${n}:u${i % 300}|s${tags}`);
    }
  }
  for (let i = 0; i < lines.length; i += 32) {
    const buf = Buffer.from(lines.slice(i, i + 32).join('\n'));
    parser.parsePacket(buf, 0, buf.length, counting);
  }
  for (let i = 0; i < 200; i++) counting.passthrough(`split.pass.${i} ${i} 1700000000`);
  assert.equal(parser.badLines, 0);
  return { batch, counting };
}

const sorted = (a: readonly string[]): string[] => [...a].sort();

test('16 shards: every name and passthrough line in its own shard\'s part, the parts together are the whole batch, samples per part exact', () => {
  const { batch, counting } = filledBatch();
  const map = new ShardMap(16);
  let hashed = 0;
  const parts = encodeMergeParts(batch, 16, (name) => {
    hashed++;
    return map.of(name);
  });

  assert.equal(parts.length, 16, 'every shard gets some of 4,000 names');
  assert.deepEqual(parts.map((p) => p.shard), [...Array(16).keys()], 'one part per shard, in shard order');
  // Hashing at seal time, once per distinct name of each type and per passthrough line: never per sample.
  assert.equal(hashed, batch.counterNames.length + batch.timerNames.length + batch.gaugeNames.length + batch.sets.size + batch.passthroughLines.length);
  assert.ok(hashed < batch.samples / 4, `${hashed} hashes for ${batch.samples} samples`);

  const whole = decode(encodeMerge(batch));
  const union: Sections = { counters: [], timers: [], timerCounts: [], gauges: [], sets: [], passthrough: [] };
  let samples = 0;
  for (const part of parts) {
    const d = decode(part.args);
    const kinds: Array<[keyof Sections, string]> = [['counters', 'c'], ['timers', 't'], ['timerCounts', 't'], ['gauges', 'g'], ['sets', 's']];
    const expected = new Map<string, number>();
    for (const [section, kind] of kinds) {
      for (const item of d[section]) {
        const name = nameOf(item);
        assert.equal(map.of(name), part.shard, `${section} ${JSON.stringify(name)} in shard ${part.shard}'s part`);
        if (section !== 'timerCounts') expected.set(`${kind} ${name}`, counting.samples.get(`${kind} ${name}`) ?? NaN);
      }
      union[section].push(...d[section]);
    }
    for (const line of d.passthrough) {
      assert.equal(map.of(line), part.shard, `passthrough ${line} in shard ${part.shard}'s part`);
      expected.set(`p ${line}`, 1);
    }
    union.passthrough.push(...d.passthrough);
    const want = [...expected.values()].reduce((a, b) => a + b, 0);
    assert.equal(part.samples, want, `shard ${part.shard}'s part carries the samples of its names`);
    samples += part.samples;
  }
  assert.equal(samples, batch.samples, 'the parts\' samples add up to the batch\'s');
  for (const section of Object.keys(whole) as Array<keyof Sections>) {
    assert.deepEqual(sorted(union[section]), sorted(whole[section]), `${section}: the parts together are the one-shard ARGV`);
  }
  assert.ok(whole.counters.some((c) => c.includes(';env=prod;az=')), 'tagged names are in the batch');
});

test('within a part, names keep the batch\'s first-seen order', () => {
  const { batch } = filledBatch();
  const map = new ShardMap(4);
  const parts = encodeMergeParts(batch, 4, (n) => map.of(n));
  const first = decode(encodeMerge(batch));
  for (const part of parts) {
    const d = decode(part.args);
    assert.deepEqual(d.counters, first.counters.filter((c) => map.of(nameOf(c)) === part.shard));
    assert.deepEqual(d.gauges, first.gauges.filter((g) => map.of(nameOf(g)) === part.shard));
    assert.deepEqual(d.timers, first.timers.filter((t) => map.of(nameOf(t)) === part.shard));
  }
});

test('a shard with no name gets no part; one shard gives the one-shard ARGV, also for an empty batch', () => {
  const batch = new Batch();
  batch.counter('only.one', 3, 1);
  batch.counter('only.one', 2, 0.5);
  const parts = encodeMergeParts(batch, 8, () => 5);
  assert.equal(parts.length, 1);
  assert.equal(parts[0]?.shard, 5);
  assert.equal(parts[0]?.samples, 2);
  assert.deepEqual(decode(parts[0]!.args), { counters: ['only.one 7'], timers: [], timerCounts: [], gauges: [], sets: [], passthrough: [] });

  const one = encodeMergeParts(batch, 1, () => assert.fail('one shard hashes nothing'));
  assert.deepEqual(one.map((p) => [p.shard, p.samples]), [[0, 2]]);
  assert.deepEqual(one[0]?.args, encodeMerge(batch));

  const empty = encodeMergeParts(new Batch(), 1, () => 0);
  assert.deepEqual(empty.map((p) => [p.shard, p.samples, p.args]), [[0, 0, ['', '', '0', '', '0', '0']]], 'no part, no gauge, no passthrough');
  assert.deepEqual(encodeMergeParts(new Batch(), 16, () => 0), [], 'an empty batch has no part on 16 shards');
});
