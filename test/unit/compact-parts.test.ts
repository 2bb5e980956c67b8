/**
 * The leader's compaction (flush/compact-parts.ts) is exact: folding the
 * compacted parts and then any later parts gives the same period as folding
 * the original parts and the same later ones, whatever the bound, the count
 * the fold starts from and where the cut falls: the same counter sums to the
 * bit, the same timer counts and samples in order, the same set members, the
 * same names admitted and the same names_dropped. Random parts over 24 names
 * (tallyd's own counters among them), with tombstones, late flags, sets with
 * no members, overflowing sums, -0; compacted once, twice (a compaction of a
 * compaction and what came after it), and at every cut of a short run.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { COMPACT_MIN_BYTES, CompactSchedule, compactParts } from '../../src/flush/compact-parts.js';
import { PartsFolder } from '../../src/flush/fold-parts.js';
import { FLAG_LATE, PartWriter, readParts, tombstonePart } from '../../src/store/packed-parts.js';
import { Rand } from '../helpers/fuzz.js';
import { flipAndRead } from '../helpers/part-flips.js';

const NAMES = [...Array.from({ length: 20 }, (_, i) => `n.${i}`), 'tallyd.a', 'tallyd.b', 'ünï.cödé', 'e'];
const VALUES = [1, 2, 0.5, -3, 1e308, 1.7e308, -1.7e308, -0, 0, 1e-320, 3.25, Infinity, -Infinity];

function randomPart(rand: Rand): Buffer {
  if (rand.chance(0.08)) {
    const pick = (): string[] => NAMES.filter(() => rand.chance(0.2));
    return tombstonePart(pick(), pick());
  }
  const w = new PartWriter(rand.chance(0.3) ? FLAG_LATE : 0);
  const some = (): string[] => NAMES.filter(() => rand.chance(0.25));
  for (const n of some()) w.counter(n, rand.pick(VALUES));
  for (const n of some()) {
    const k = rand.int(4);
    const samples = Float64Array.from({ length: k }, () => rand.pick(VALUES));
    w.timer(n, rand.pick([1, 2, 0.5, 10, 1.7e308, Infinity, -Infinity]), samples, 0, k);
  }
  for (const n of some()) {
    const members = Array.from({ length: rand.int(3) }, () => `m${rand.int(6)}`);
    w.set(n, new Set(members), new Set(members).size);
  }
  return w.finish();
}

interface Folded {
  counters: Array<[string, number]>;
  timerCounts: Array<[string, number]>;
  timers: Array<[string, number[]]>;
  sets: Array<[string, string[]]>;
  count: number;
  dropped: number;
}

function fold(buf: Buffer, maxNames: number, count: number): Folded {
  const f = new PartsFolder({ maxNames, exemptPrefix: 'tallyd.', held: () => false, count });
  readParts(buf, f);
  // As entry lists, so the order is compared too (deepEqual does not compare a Map's): the flusher writes names in
  // the fold's order.
  return {
    counters: [...f.counters],
    timerCounts: [...f.timerCounts],
    timers: [...f.timers],
    sets: [...f.sets].map(([name, members]) => [name, [...members]] as [string, string[]]),
    count: f.count,
    dropped: f.outcomes.reduce((a, o) => a + o.dropped, 0),
  };
}

function compacted(buf: Buffer): Buffer {
  const c = compactParts(buf);
  assert.ok(c !== null, 'these parts compact');
  return c.bytes;
}

describe('compacting a period’s parts', () => {
  test('random parts, cut anywhere, compacted once or twice: the same fold for bounds 0 to 30 and any start count', () => {
    const rand = new Rand(0xc0a1);
    for (let round = 0; round < 300; round++) {
      const parts = Array.from({ length: 1 + rand.int(25) }, () => randomPart(rand));
      const cut1 = rand.int(parts.length + 1);
      const cut2 = cut1 + rand.int(parts.length - cut1 + 1);
      const whole = Buffer.concat(parts);
      const once = Buffer.concat([compacted(Buffer.concat(parts.slice(0, cut1))), ...parts.slice(cut1)]);
      // A second compaction reads the first's output and the parts appended after it.
      const twice = Buffer.concat([compacted(Buffer.concat([compacted(Buffer.concat(parts.slice(0, cut1))), ...parts.slice(cut1, cut2)])), ...parts.slice(cut2)]);
      for (const maxNames of [0, 1, 3, 8, 30]) {
        for (const count of [0, 2]) {
          const want = fold(whole, maxNames, count);
          assert.deepEqual(fold(once, maxNames, count), want, `round ${round}, once at ${cut1}, maxNames ${maxNames}, count ${count}`);
          assert.deepEqual(fold(twice, maxNames, count), want, `round ${round}, twice at ${cut1}/${cut2}, maxNames ${maxNames}, count ${count}`);
        }
      }
    }
  });

  test('busy names: 50 ticks of the same 100 names compact to one entry a name, and the sums stay exact', () => {
    const ticks: Buffer[] = [];
    for (let t = 0; t < 50; t++) {
      const w = new PartWriter();
      for (let i = 0; i < 100; i++) w.counter(`busy.counter.${i}`, 1);
      for (let i = 0; i < 10; i++) w.timer(`busy.timer.${i}`, 1, Float64Array.of(t, i), 0, 2);
      w.set('busy.users', [`u${t % 7}`], 1);
      ticks.push(w.finish());
    }
    const whole = Buffer.concat(ticks);
    const c = compactParts(whole);
    assert.ok(c !== null);
    assert.equal(c.partsIn, 50);
    assert.equal(c.partsOut, 1, 'every name came in the first tick: one group');
    assert.equal(c.items, 111);
    assert.ok(c.bytes.length * 10 < whole.length, `${c.bytes.length} bytes from ${whole.length}`);
    const f = fold(c.bytes, 0, 0);
    const get = <T>(list: Array<[string, T]>, name: string): T | undefined => list.find(([n]) => n === name)?.[1];
    assert.equal(get(f.counters, 'busy.counter.7'), 50);
    assert.equal(get(f.timerCounts, 'busy.timer.3'), 50);
    assert.deepEqual(get(f.timers, 'busy.timer.3'), Array.from({ length: 50 }, (_, t) => [t, 3]).flat());
    assert.equal(get(f.sets, 'busy.users')?.length, 7);
    // With a bound of 10 names, the names past it are dropped once a part they were in, as from the ticks.
    assert.deepEqual(fold(c.bytes, 10, 0), fold(whole, 10, 0));
    assert.equal(fold(c.bytes, 10, 0).dropped, 101 * 50);
  });

  test('parts with gauges, or a tombstone with sets, are left as they are', () => {
    const g = new PartWriter();
    g.counter('a', 1);
    g.gauge('g', false, 3);
    assert.equal(compactParts(Buffer.concat([tombstonePart(['a'], []), g.finish()])), null);
    const t = new PartWriter(2); // a tombstone flag with a set: not something tallyd writes
    t.set('s', ['m'], 1);
    assert.equal(compactParts(t.finish()), null);
    assert.deepEqual(compactParts(Buffer.alloc(0)), { bytes: Buffer.alloc(0), partsIn: 0, partsOut: 0, items: 0 });
  });

  test('compacted parts flipped and cut: read whole or refused with PackedPartError, never half visited', () => {
    const rand = new Rand(0xf11b);
    const whole = compacted(Buffer.concat(Array.from({ length: 12 }, () => randomPart(rand))));
    const refused = flipAndRead(whole, rand, 3000);
    assert.ok(refused > 1500, `most flips are refused (${refused} of 3000)`);
  });

  test('the schedule: at 64 KiB, then as the parts double; a flood pushes the start up to a quarter of the budget, a saving compaction brings it back', () => {
    const MB = 1 << 20;
    const s = new CompactSchedule(8 * MB); // a shard's budget of 8 MiB
    const good = (bytesIn: number, bytesNow: number) => ({ status: 'compacted' as const, bytesIn, bytesOut: bytesIn / 20, bytesNow, partsIn: 50, partsOut: 1, items: 1, busyMs: 1 });
    const poor = (bytesIn: number, bytesNow: number) => ({ ...good(bytesIn, bytesNow), bytesOut: bytesIn });
    assert.equal(s.due(1, COMPACT_MIN_BYTES - 1), false);
    assert.equal(s.due(1, COMPACT_MIN_BYTES), true);
    s.done(1, good(COMPACT_MIN_BYTES, 20_000));
    assert.equal(s.due(1, COMPACT_MIN_BYTES - 1), false, 'twice what the compaction left, at least 64 KiB');
    s.done(1, good(COMPACT_MIN_BYTES, 40_000));
    assert.equal(s.due(1, 79_999), false);
    assert.equal(s.due(1, 80_000), true, 'twice what the compaction left');
    s.done(1, good(200_000, 100_000));
    assert.equal(s.due(1, 199_999), false);
    assert.equal(s.due(1, 200_000), true, 'twice what the compaction left');
    // A flood: the period's mark goes four times further, later periods start higher, up to 2 MiB (8 MiB / 4).
    s.done(1, poor(MB, MB));
    assert.equal(s.due(1, 4 * MB - 1), false);
    assert.equal(s.due(2, 2 * MB - 1), false, 'a new period starts higher');
    assert.equal(s.due(2, 2 * MB), true, 'but within a quarter of the budget');
    s.done(2, good(2 * MB, 100_000));
    assert.equal(s.due(3, COMPACT_MIN_BYTES), true, 'a compaction that saved brings the start back');
    s.done(3, { status: 'kept', bytesIn: 100_000 });
    assert.equal(s.due(3, 399_999), false, 'kept (no smaller): like a poor compaction');
    assert.equal(s.due(3, 400_000), true);
    s.keep([3]);
    assert.equal(s.due(1, 799_999), false, 'a period no longer open is forgotten: it starts where new ones do');
    assert.equal(s.due(1, 800_000), true);
    const unbounded = new CompactSchedule(0);
    unbounded.done(1, poor(16 * MB, 16 * MB));
    assert.equal(unbounded.due(2, 128 * MB - 1), false, 'unbounded: eight times the flood compaction');
    // Near the budget: a compaction that left 800,000 bytes of a 1 MiB budget marks half the room left, not twice.
    const small = new CompactSchedule(MB);
    small.done(9, good(1_000_000, 800_000));
    assert.equal(small.due(9, 924_287), false);
    assert.equal(small.due(9, 924_288), true, 'before the budget refuses parts');
    small.done(9, poor(1_040_000, 1_040_000));
    assert.equal(small.due(9, 1_040_000 + COMPACT_MIN_BYTES / 4), true, 'past the budget: every 16 KiB of growth');
  });
});
