/**
 * The packed parts and their fold (store/packed-parts.ts, flush/fold-parts.ts)
 * against layout 2's mergeBatch-15 on the real Redis (kept as the reference:
 * test/helpers/merge-v2.ts): the same batches, merged by the script into a
 * period's hashes and packed and folded in merge order, give
 * the same period (counters, timer counts and samples, gauge ops, set
 * members, the bound's name count) and the same outcome a batch (names
 * dropped, the few named, gauges clamped). Random batches over 40 names with
 * bounds from 1 to 30, held gauges and late batches; batches past the
 * script's 1,000-name chunks; overflowed sums, gauge deltas past the doubles,
 * -0, names in UTF-8. Held gauges stay put during a period here: the fold asks
 * at flush where the script asks at each merge (fold-parts.ts says why).
 */
import assert from 'node:assert/strict';
import type { Redis } from 'ioredis';
import { describe, test } from 'node:test';
import { Batch } from '../../src/aggregate/batch.js';
import { PartsFolder, type GaugeOp, type PartOutcome } from '../../src/flush/fold-parts.js';
import { FIELD_SEP } from '../../src/store/keys.js';
import { PackedPartError, readParts, tombstonePart, type PartVisitor } from '../../src/store/packed-parts.js';
import { encodeMergeParts } from '../../src/aggregate/merge-args.js';
import { redisNumber } from '../../src/store/redis-number.js';
import { unpackSamples } from '../../src/store/sample-codec.js';
import { readString, type Store } from '../../src/store/store.js';
import { Rand } from '../helpers/fuzz.js';
import { packWhole, V2Period } from '../helpers/merge-v2.js';
import { flipAndRead } from '../helpers/part-flips.js';
import { storeOnFreshPrefix } from '../helpers/store.js';

interface PeriodState {
  outcomes: PartOutcome[];
  counters: Map<string, number>;
  timerCounts: Map<string, number>;
  timers: Map<string, number[]>;
  gauges: Map<string, GaugeOp>;
  sets: Map<string, Set<string>>;
  count: number;
}

const sortedSamples = (m: Map<string, number[]>): Map<string, number[]> => new Map([...m].map(([k, v]) => [k, [...v].sort((x, y) => x - y)]));

let nextBoundary = 1000;

/**
 * The batches merged by layout 2's mergeBatch-15 into a fresh period (the reference, test/helpers/merge-v2.ts), and
 * packed and folded; the persistent gauges are `held` for both. Returns what each side made of them.
 */
async function bothWays(
  s: Store,
  batches: ReadonlyArray<{ batch: Batch; late?: boolean }>,
  maxNames: number,
  exemptPrefix: string,
  held: readonly string[],
): Promise<{ lua: PeriodState; fold: PeriodState }> {
  const boundary = nextBoundary++ * 10_000;
  const v2 = new V2Period(s.redis as Redis, `${s.keyPrefix}v2ref:`, boundary);
  await v2.holdGauges(held);
  const heldSet = new Set(held);
  const folder = new PartsFolder({ maxNames, exemptPrefix, held: (g) => heldSet.has(g) });
  const outcomes: PartOutcome[] = [];
  const packed: Buffer[] = [];
  for (const [i, { batch, late = false }] of batches.entries()) {
    outcomes.push(await v2.merge(batch, `fold-${boundary}-${i}`, late, maxNames, exemptPrefix));
    packed.push(packWhole(batch, late));
  }
  // The parts as a period's string would hold them, appended one after another.
  assert.equal(readParts(Buffer.concat(packed), folder), batches.length);

  const raw = await v2.read();
  const num = (r: Record<string, string>): Map<string, number> => new Map(Object.entries(r).map(([k, v]) => [k, redisNumber(v)]));
  const timers = new Map<string, number[]>();
  for (const [field, buf] of Object.entries(raw.timers)) {
    const name = field.slice(0, field.indexOf(FIELD_SEP));
    const list = timers.get(name) ?? [];
    unpackSamples(buf, list);
    timers.set(name, list);
  }
  const sets = new Map<string, Set<string>>();
  for (const field of raw.sets) {
    const at = field.indexOf(FIELD_SEP);
    const name = field.slice(0, at);
    sets.set(name, (sets.get(name) ?? new Set()).add(field.slice(at + 1)));
  }
  const lua: PeriodState = {
    outcomes,
    counters: num(raw.counters),
    timerCounts: num(raw.timerCounts),
    timers: sortedSamples(timers),
    gauges: new Map(Object.entries(raw.gauges).map(([k, v]) => [k, { delta: v[0] === 'd', value: redisNumber(v.slice(1)) }])),
    sets,
    count: raw.count,
  };
  const fold: PeriodState = {
    outcomes: folder.outcomes,
    counters: folder.counters,
    timerCounts: folder.timerCounts,
    timers: sortedSamples(folder.timers),
    gauges: folder.gauges,
    sets: folder.sets,
    count: folder.count,
  };
  return { lua, fold };
}

const NAMES = [...Array.from({ length: 38 }, (_, i) => (i % 5 === 0 ? `tallyd.n${i}` : `n.${i}`)), 'ünï.cödé', 'e'];
const VALUES = [1, 2.5, -3, 1e308, -1e308, 1.7e308, -1.7e308, 0.1, 7, 0, -0, 1e-300];

function randomBatch(rand: Rand): Batch {
  const b = new Batch();
  const pick = <T>(xs: readonly T[]): T => xs[rand.int(xs.length)]!;
  for (let n = rand.int(40); n > 0; n--) {
    const name = pick(NAMES);
    switch (rand.int(4)) {
      case 0:
        b.counter(name, pick(VALUES), rand.next() < 0.2 ? 0.5 : 1);
        break;
      case 1:
        b.timer(name, pick(VALUES) / 1e10, rand.next() < 0.2 ? 0.25 : 1);
        break;
      case 2:
        b.gauge(name, pick(VALUES), rand.next() < 0.5);
        break;
      default:
        b.set(name, pick(['x', 'y', 'z', 'ω', 'v', 'u']));
    }
  }
  return b;
}

describe('packed parts folded at flush: the same period as mergeBatch-15', () => {
  const { store } = storeOnFreshPrefix('fold-parts');

  test('random batches, bounds 0 and 1 to 30, held gauges, late batches: every name, sample, op, member and outcome alike', async () => {
    const rand = new Rand(0xf01d); // the same batches every run
    for (let round = 0; round < 80; round++) {
      const maxNames = round % 5 === 0 ? 0 : 1 + rand.int(30);
      const held = NAMES.filter(() => rand.next() < 0.2);
      // The first two batches: a gauge set near the largest double, then a delta past it (clamped, counted).
      const batches: Array<{ batch: Batch; late?: boolean }> = [new Batch(), new Batch()].map((batch, i) => {
        batch.gauge('clamp.me', 1.7e308, i === 1);
        return { batch };
      });
      for (let n = 1 + rand.int(30); n > 0; n--) batches.push({ batch: randomBatch(rand), late: rand.next() < 0.3 });
      const { lua, fold } = await bothWays(store(), batches, maxNames, 'tallyd.', held);
      assert.deepEqual(fold, lua, `round ${round}, maxNames ${maxNames}`);
      if (maxNames === 1) assert.ok(lua.outcomes.some((o) => o.dropped > 0), 'the bound dropped some names');
      assert.equal(lua.outcomes[1]!.clamped, 1, 'the delta past the doubles is clamped and counted');
    }
  });

  test("batches past the script's 1,000-name chunks, the bound filling up inside a chunk", async () => {
    const batch = (off: number): Batch => {
      const b = new Batch();
      for (let i = 0; i < 2500; i++) b.counter(`c${(i + off) % 3000}`, 1, 1);
      for (let i = 0; i < 1500; i++) b.counter(`x.c${i}`, 1, 1);
      for (let i = 0; i < 1300; i++) b.timer(`t${(i + off) % 2000}`, i, 1);
      for (let i = 0; i < 2100; i++) b.gauge(`g${(i + off) % 2500}`, i, i % 2 === 0);
      for (let i = 0; i < 1700; i++) b.set(`s${i % 3}`, `m${i + off}`);
      for (let i = 0; i < 1200; i++) b.set(`u${i}`, 'm');
      return b;
    };
    for (const maxNames of [0, 2400, 3700, 6000, 9000]) {
      const { lua, fold } = await bothWays(store(), [{ batch: batch(0) }, { batch: batch(700), late: true }, { batch: batch(1400) }], maxNames, 'x.', ['g1200', 'g1999']);
      assert.deepEqual(fold, lua, `maxNames ${maxNames}`);
    }
  });

  test('a part cut short, of an unknown version or flag, or with a bad gauge mode is refused whole: nothing of it is folded', () => {
    const b = new Batch();
    b.counter('a', 1, 1);
    b.gauge('g', 2, false);
    const good = packWhole(b);
    const bad = (at: number, v: number): Buffer => {
      const c = Buffer.from(good);
      c[at] = v;
      return c;
    };
    const cases: Array<[string, Buffer, RegExp]> = [
      ['cut short', good.subarray(0, good.length - 3), /left|cut short/],
      ['version', bad(4, 9), /format version 9/],
      ['flags', bad(5, 8), /unknown flags 8/],
      ['gauge mode', bad(good.length - 4 - 8 - 1, 0x78), /mode is 120/], // before its f64 and the empty sets section
    ];
    for (const [what, buf, message] of cases) {
      const folder = new PartsFolder({ maxNames: 0, exemptPrefix: '', held: () => false });
      // A good part first: it is folded; the bad one after it is not, not even its first item.
      assert.throws(() => readParts(Buffer.concat([good, buf]), folder), (e: unknown) => e instanceof PackedPartError && message.test(e.message), what);
      assert.deepEqual([...folder.counters], [['a', 1]], `${what}: only the good part's counter`);
      assert.equal(folder.outcomes.length, 1, `${what}: one part folded`);
    }
  });

  test('random byte flips and cuts: a part reads whole or is refused with PackedPartError, never half folded, never another error', () => {
    const rand = new Rand(0xbad);
    const parts = Array.from({ length: 4 }, () => packWhole(randomBatch(rand)));
    const refused = flipAndRead(Buffer.concat(parts), rand, 3000);
    assert.ok(refused > 2000, `most flips are refused (${refused} of 3000)`);
  });

  test('a tombstone part takes counters and timers out of the period as folded so far; they stay counted in the bound', () => {
    const b = new Batch();
    b.counter('a', 1, 1);
    b.counter('b', 2, 1);
    b.timer('t', 5, 1);
    const later = new Batch();
    later.counter('a', 10, 1);
    const parts = [packWhole(b), tombstonePart(['a'], ['t']), packWhole(later)];
    const folder = new PartsFolder({ maxNames: 3, exemptPrefix: '', held: () => false, count: 0 });
    assert.equal(readParts(Buffer.concat(parts), folder), 3);
    assert.deepEqual([...folder.counters], [['b', 2]], 'a came back after the tombstone, past the bound: dropped');
    assert.equal(folder.timers.size + folder.timerCounts.size, 0);
    assert.deepEqual(folder.outcomes[2], { dropped: 1, examples: ['a'], clamped: 0 });
  });

  test('split by shard (encodeMergeParts): each shard gets its names only, in first-seen order, and the parts read back', () => {
    const b = new Batch();
    for (const n of ['a', 'b', 'c', 'd']) b.counter(n, 1, 1);
    b.set('s', 'm');
    b.timer('b', 5, 1);
    const parts = encodeMergeParts(b, 4, (n) => 'abcds'.indexOf(n) % 4);
    assert.deepEqual(parts.map((p) => p.shard), [0, 1, 2, 3]);
    const seen: string[][] = [];
    for (const p of parts) {
      const names: string[] = [];
      const v: PartVisitor = {
        part: () => {},
        end: () => {},
        counter: (n) => names.push(n),
        timer: (n, count, samples, from, to) => names.push(`${n}:${count}:${[...samples.subarray(from, to)].join()}`),
        gauge: () => {},
        set: (n, ms) => names.push(`${n}=${ms.join()}`),
      };
      readParts(p.args[0] as Buffer, v);
      seen.push(names);
    }
    assert.deepEqual(seen, [['a', 's=m'], ['b', 'b:1:5'], ['c'], ['d']]);
    assert.throws(() => encodeMergeParts(b, 4, () => 7), /gave 7, not a shard of 4/);
  });

  test('a period read in GETRANGE slices (the path for parts past 64 MB) is the same bytes and folds the same', async () => {
    const s = store();
    const key = `${s.keyPrefix}sliced:parts`;
    const rand = new Rand(0x511ce);
    const parts: Buffer[] = [];
    for (let i = 0; i < 40; i++) parts.push(packWhole(randomBatch(rand), rand.next() < 0.2));
    const whole = Buffer.concat(parts);
    for (const p of parts) await s.redis.append(key, p);
    const foldOf = (buf: Buffer): PartsFolder => {
      const f = new PartsFolder({ maxNames: 25, exemptPrefix: 'tallyd.', held: () => false });
      assert.equal(readParts(buf, f), parts.length);
      return f;
    };
    const expected = foldOf(whole);
    // Slices that cut parts anywhere: 1 byte, odd sizes, exactly the length, one short of it.
    for (const slice of [1, 7, 1000, 4093, whole.length - 1, whole.length, whole.length + 1]) {
      const got = await readString(s.redis, key, slice);
      assert.ok(got.equals(whole), `slice ${slice}: the same ${whole.length} bytes`);
      const f = foldOf(got);
      assert.deepEqual([f.counters, f.timers, f.timerCounts, f.sets, f.outcomes], [expected.counters, expected.timers, expected.timerCounts, expected.sets, expected.outcomes], `slice ${slice}`);
    }
    assert.equal((await readString(s.redis, `${s.keyPrefix}sliced:none`, 7)).length, 0, 'no key: no parts');
    // A key that changes under the reader (it must not: a closed period is not appended to) is an error, not a torn read.
    const real = s.redis;
    let calls = 0;
    const shrinking = {
      strlen: (k: string) => real.strlen(k),
      getBuffer: (k: string) => real.getBuffer(k),
      getrangeBuffer: async (k: string, from: number, to: number) => {
        if (++calls === 2) await real.set(k, whole.subarray(0, 100));
        return real.getrangeBuffer(k, from, to);
      },
    };
    await assert.rejects(readString(shrinking, key, 4096), /changed length while read in slices/);
    await real.del(key);
  });
});
