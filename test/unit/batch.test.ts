/**
 * Batch + encodeMerge: the ARGV of mergeBatch-11.lua must be exactly what the
 * straightforward Map-per-type fold gives (the reference below is the fold
 * tallyd had before Batch kept slots and typed arrays), for samples with and
 * without intern key ids, and whatever those ids are.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Batch } from '../../src/aggregate/batch.js';
import { encodeMerge, type MergeArg } from '../../src/aggregate/merge-args.js';
import { packSamples } from '../../src/store/sample-codec.js';
import { KEY_SPAN } from '../../src/parse/key-intern.js';
import type { SampleSink } from '../../src/parse/sample-sink.js';
import { StatsdLineParser } from '../../src/parse/statsd-line.js';
import { chunkLines } from '../../src/sink/graphite/chunk.js';
import { PartWriter } from '../../src/store/packed-parts.js';

/** The reference fold and encoding: one Map per type, keyed by name. */
class ReferenceBatch implements SampleSink {
  readonly counters = new Map<string, number>();
  readonly timers = new Map<string, number[]>();
  readonly timerCounts = new Map<string, number>();
  readonly gauges = new Map<string, { delta: boolean; value: number }>();
  readonly sets = new Map<string, Set<string>>();
  readonly passthroughLines: string[] = [];
  counter(name: string, value: number, rate: number): void {
    this.counters.set(name, (this.counters.get(name) ?? 0) + value * (1 / rate));
  }
  gauge(name: string, value: number, delta: boolean): void {
    const op = this.gauges.get(name);
    if (op === undefined) this.gauges.set(name, { delta, value });
    else if (delta) op.value += value;
    else {
      op.delta = false;
      op.value = value;
    }
  }
  timer(name: string, value: number, rate: number): void {
    const v = this.timers.get(name);
    if (v === undefined) this.timers.set(name, [value]);
    else v.push(value);
    this.timerCounts.set(name, (this.timerCounts.get(name) ?? 0) + 1 / rate);
  }
  set(name: string, member: string): void {
    const m = this.sets.get(name);
    if (m === undefined) this.sets.set(name, new Set([member]));
    else m.add(member);
  }
  passthrough(line: string): void {
    this.passthroughLines.push(line);
  }
  /** mergeBatch-11's ARGV from ARGV[10] on (merge-args.ts), written plainly from the Maps. */
  encode(_batchId: string): MergeArg[] {
    const part = new PartWriter();
    const names: string[] = [];
    for (const [name, v] of this.counters) {
      part.counter(name, v);
      names.push(name);
    }
    for (const [name, values] of this.timers) {
      part.timer(name, this.timerCounts.get(name)!, new Float64Array(values), 0, values.length);
      names.push(name);
    }
    for (const [name, m] of this.sets) {
      part.set(name, m, m.size);
      names.push(name);
    }
    const args: MergeArg[] = [part.items > 0 ? part.finish() : '', '', String(part.items), names.slice(0, 5).join('\n'), String(this.gauges.size)];
    for (const [name, op] of this.gauges) args.push(name, op.delta ? 'd' : 's', String(op.value));
    const chunks = chunkLines(this.passthroughLines);
    args.push(String(chunks.length));
    for (const c of chunks) args.push(c, String(c.split('\n').length - 1));
    return args;
  }
}

function lcg(seed: number): (n: number) => number {
  let s = seed >>> 0;
  return (n) => ((s = (Math.imul(s, 1103515245) + 12345) >>> 0) >>> 8) % n;
}

test('encodeMerge equals the reference fold on a random stream, keyed and unkeyed samples mixed', () => {
  for (const seed of [1, 2, 3]) {
    const rnd = lcg(seed);
    const batch = new Batch();
    const ref = new ReferenceBatch();
    const names = Array.from({ length: 150 }, (_, i) => (i % 10 === 0 ? `shared.${i % 30}` : `n.${i}`));
    for (let j = 0; j < 20_000; j++) {
      const i = rnd(names.length);
      const name = names[i]!;
      // A key as a parser gives it (one id per name), none, or ids of other intern generations.
      const pick = rnd(4);
      const key = pick === 0 ? -1 : pick === 1 ? KEY_SPAN * 3 + i : pick === 2 ? KEY_SPAN * 5 + i : i;
      const rate = rnd(4) === 0 ? 0.1 * (1 + rnd(9)) : 1;
      const value = rnd(3) === 0 ? (rnd(2000) - 1000) / 7 : rnd(100);
      switch (rnd(5)) {
        case 0:
        case 1:
          batch.counter(name, value, rate, key);
          ref.counter(name, value, rate);
          break;
        case 2:
          batch.timer(name, Math.abs(value), rate, key);
          ref.timer(name, Math.abs(value), rate);
          break;
        case 3: {
          const delta = rnd(3) === 0;
          batch.gauge(name, value, delta, key);
          ref.gauge(name, value, delta);
          break;
        }
        default: {
          const member = `m${rnd(50)}`;
          batch.set(name, member);
          ref.set(name, member);
        }
      }
    }
    for (const line of ['a 1 1700000000', 'b 2 1700000000']) {
      batch.passthrough(line);
      ref.passthrough(line);
    }
    const got = encodeMerge(batch);
    assert.ok(Buffer.isBuffer(got[0]) && got[0].length > 20_000, "one packed part of many names");
    assert.deepEqual(got, ref.encode('node:7'), `seed ${seed}`);
    assert.equal(batch.names, ref.counters.size + ref.timers.size + ref.gauges.size + ref.sets.size);
    assert.equal(batch.samples, 20_002);
  }
});

test('a key id never lands a sample on another name', () => {
  const batch = new Batch();
  const ref = new ReferenceBatch();
  // One id for two names (a stale id, or one from another table): each keeps its own slot.
  for (const [name, key] of [['a', 5], ['b', 5], ['a', 5], ['c', 5], ['b', 5], ['a', -1], ['b', 6], ['a', 6]] as const) {
    batch.counter(name, 1, 1, key);
    batch.timer(name, 2, 0.5, key);
    batch.gauge(name, 3, true, key);
    ref.counter(name, 1, 1);
    ref.timer(name, 2, 0.5);
    ref.gauge(name, 3, true);
  }
  assert.deepEqual(encodeMerge(batch), ref.encode('id'));
});

test('ids of a newer intern generation replace the cached ones; older ones still fold by name', () => {
  const batch = new Batch();
  const ref = new ReferenceBatch();
  const steps: [string, number][] = [['x', 3], ['y', 4], ['x', KEY_SPAN * 2 + 0], ['y', KEY_SPAN * 2 + 1], ['x', 3], ['y', 4], ['x', KEY_SPAN * 2]];
  for (const [name, key] of steps) {
    batch.counter(name, 2, 1, key);
    ref.counter(name, 2, 1);
  }
  assert.deepEqual(encodeMerge(batch), ref.encode('g'));
});

test('timer samples keep their order across growth, interleaved with other timers', () => {
  const batch = new Batch();
  const ref = new ReferenceBatch();
  for (let i = 0; i < 10_000; i++) {
    batch.timer('big', i / 3, 1, 1);
    ref.timer('big', i / 3, 1);
    if (i % 7 === 0) {
      batch.timer(`small.${i % 5}`, -i, 0.25, 2 + (i % 5));
      ref.timer(`small.${i % 5}`, -i, 0.25);
    }
  }
  assert.deepEqual(encodeMerge(batch), ref.encode('t'));
});

test('parser + Batch equals parser + reference, with an intern table that clears mid-batch', () => {
  const rnd = lcg(42);
  const lines: string[] = [];
  for (let j = 0; j < 5000; j++) {
    const i = rnd(300);
    const tag = rnd(5) === 0 ? `|#az:${rnd(3)}` : '';
    const rate = rnd(8) === 0 ? '|@0.5' : '';
    switch (rnd(6)) {
      case 0:
        lines.push(`t.${i}:${rnd(1000) / 10}|ms${rate}${tag}`);
        break;
      case 1:
        lines.push(`g.${i}:${rnd(3) === 0 ? '+' : ''}${rnd(100)}|g${tag}`);
        break;
      case 2:
        lines.push(`s.${i}:u${rnd(20)}|s${tag}`);
        break;
      case 3:
        lines.push(`m.${i}:1|c:${rnd(50)}|ms:${rnd(9)}|g${tag}`);
        break;
      case 4:
        lines.push(`bad.${i}:x|c`);
        break;
      default:
        lines.push(`c.${i}:${rnd(10)}|c${rate}${tag}`);
    }
  }
  const text = Buffer.from(lines.join('\n'));
  const fast = new StatsdLineParser({ keyNameSanitize: true, intern: { maxEntries: 100, restLookups: 0 } });
  const batch = new Batch();
  fast.parsePacket(text, 0, text.length, batch);
  const slow = new StatsdLineParser({ keyNameSanitize: true });
  const ref = new ReferenceBatch();
  slow.parsePacket(text, 0, text.length, ref);
  assert.ok(fast.intern.clears > 5, `${fast.intern.clears} clears`);
  assert.equal(fast.badLines, slow.badLines);
  assert.ok(fast.badLines > 0);
  assert.deepEqual(encodeMerge(batch), ref.encode('p'));
});

test('packSamples: a Float64Array range packs exactly as writeDoubleLE does', () => {
  const values = [0, -0, 1.5, -2.25, 1e-310, Number.MAX_VALUE, 123456.789];
  const f = new Float64Array([99, ...values, 99]);
  const want = Buffer.alloc(values.length * 8);
  values.forEach((v, i) => want.writeDoubleLE(v, i * 8));
  assert.deepEqual(packSamples(f, 1, 1 + values.length), want);
  assert.deepEqual(packSamples(values), want);
  assert.equal(packSamples(f, 3, 3).length, 0);
});

test('an empty batch, and one with only passthrough lines', () => {
  const empty = new Batch();
  assert.equal(empty.isEmpty, true);
  assert.deepEqual(encodeMerge(empty), new ReferenceBatch().encode('e'));
  const pass = new Batch();
  pass.passthrough('x 1 1700000000');
  assert.equal(pass.isEmpty, false);
  assert.equal(pass.names, 0);
});
