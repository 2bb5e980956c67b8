/**
 * The Redis history of committed periods behind /api/names and /api/series
 * (store/recent.ts), on the real Redis: the bounds (periods and bytes) hold
 * after every append, a replayed period is rewritten, names are searched as
 * substrings (glob characters are literal) in pieces, and a series reads one
 * name across the kept periods.
 */
import assert from 'node:assert/strict';
import { after, describe, test } from 'node:test';
import type { Redis } from 'ioredis';
import { Keys } from '../../src/store/keys.js';
import { RecentPeriods, RecentShards } from '../../src/store/recent.js';
import { ShardMap } from '../../src/store/shards.js';
import { cleanup, client, testPrefix } from '../helpers/redis.js';

const T0 = 1_800_000_000_000;
const STEP = 10_000;

function period(n: number, tag: string): { names: string[]; values: string[]; bytes: number } {
  const names = Array.from({ length: n }, (_, i) => `stats.${tag}.m${i}`);
  const values = names.map((_, i) => String(i));
  const bytes = names.reduce((a, name, i) => a + `${name} ${values[i]} 1800000000\n`.length, 0);
  return { names, values, bytes };
}

describe('recent periods in Redis', () => {
  const prefixes: string[] = [];
  const redis: Redis = client();
  const open = (name: string): { recent: RecentPeriods; keys: Keys } => {
    const prefix = testPrefix(name);
    prefixes.push(prefix);
    const keys = new Keys(prefix);
    return { recent: new RecentPeriods(redis, keys), keys };
  };
  after(async () => {
    for (const p of prefixes) await cleanup(p);
    redis.disconnect();
  });

  test('keeps at most maxPeriods, the newest, and deletes the older hashes', async () => {
    const { recent, keys } = open('recent-count');
    const bounds = { maxBytes: 1e9, maxPeriods: 3, ttlMs: 3_600_000 };
    const p = period(10, 'a');
    for (let i = 0; i < 5; i++) await recent.append(T0 + i * STEP, p.names, p.values, p.bytes, bounds);
    assert.deepEqual(await recent.periods(), [T0 + 2 * STEP, T0 + 3 * STEP, T0 + 4 * STEP]);
    assert.equal(await redis.exists(keys.recentPeriod(T0), keys.recentPeriod(T0 + STEP)), 0);
    assert.deepEqual(Object.keys(await redis.hgetall(keys.recentBytes)).sort(), [2, 3, 4].map((i) => String(T0 + i * STEP)));
    assert.ok((await redis.pttl(keys.recentPeriod(T0 + 4 * STEP))) > 0, 'each kept hash has a TTL');
  });

  test('keeps the newest periods whose line bytes add up to at most maxBytes', async () => {
    const { recent, keys } = open('recent-bytes');
    const p = period(100, 'b');
    const bounds = { maxBytes: p.bytes * 2 + 1, maxPeriods: 360, ttlMs: 3_600_000 };
    for (let i = 0; i < 4; i++) {
      await recent.append(T0 + i * STEP, p.names, p.values, p.bytes, bounds);
      const sizes = Object.values(await redis.hgetall(keys.recentBytes)).map(Number);
      assert.ok(sizes.reduce((a, b) => a + b, 0) <= bounds.maxBytes, `bound held after append ${i}`);
    }
    assert.deepEqual(await recent.periods(), [T0 + 2 * STEP, T0 + 3 * STEP]);
  });

  test('a replayed period is rewritten, not doubled', async () => {
    const { recent, keys } = open('recent-replay');
    const bounds = { maxBytes: 1e9, maxPeriods: 10, ttlMs: 3_600_000 };
    await recent.append(T0, ['x.one', 'x.two'], ['1', '2'], 20, bounds);
    await recent.append(T0, ['x.one'], ['5'], 10, bounds);
    assert.deepEqual(await redis.hgetall(keys.recentPeriod(T0)), { 'x.one': '5' });
    assert.deepEqual(await recent.periods(), [T0]);
  });

  test('names: substring of the newest period, sorted, limited, glob characters literal, read in pieces', async () => {
    const { recent } = open('recent-names');
    const bounds = { maxBytes: 1e9, maxPeriods: 10, ttlMs: 3_600_000 };
    assert.deepEqual(await recent.names('', 10), { boundaryMs: null, names: [], truncated: false });
    await recent.append(T0, ['old.only'], ['1'], 10, bounds);
    const p = period(5000, 'c');
    const names = [...p.names, 'odd*name', 'odd?name', 'odd[x]name', 'oddxname'];
    await recent.append(T0 + STEP, names, [...p.values, '1', '2', '3', '4'], p.bytes, bounds);
    assert.deepEqual(await recent.names('old', 10), { boundaryMs: T0 + STEP, names: [], truncated: false });
    assert.deepEqual((await recent.names('*', 10)).names, ['odd*name']);
    assert.deepEqual((await recent.names('?', 10)).names, ['odd?name']);
    assert.deepEqual((await recent.names('[x]', 10)).names, ['odd[x]name']);
    const m49 = await recent.names('.m49', 500);
    assert.deepEqual(m49.names, names.filter((n) => n.includes('.m49')).sort());
    assert.equal(m49.names.length, 111); // m49, m490..m499, m4900..m4999
    assert.equal(m49.truncated, false);
    const many = await recent.names('stats.c.', 500);
    assert.equal(many.names.length, 500);
    assert.equal(many.truncated, true);
    assert.deepEqual(many.names, [...many.names].sort());
  });

  test('series: one value per kept period, null where the name is missing', async () => {
    const { recent } = open('recent-series');
    const bounds = { maxBytes: 1e9, maxPeriods: 10, ttlMs: 3_600_000 };
    await recent.append(T0, ['s.a'], ['1.5'], 10, bounds);
    await recent.append(T0 + STEP, ['s.b'], ['2'], 10, bounds);
    await recent.append(T0 + 2 * STEP, ['s.a', 's.b'], ['-3', '4'], 20, bounds);
    assert.deepEqual(await recent.series('s.a'), { t: [0, 1, 2].map((i) => (T0 + i * STEP) / 1000), v: [1.5, null, -3] });
    assert.deepEqual(await recent.series('nope'), { t: [0, 1, 2].map((i) => (T0 + i * STEP) / 1000), v: [null, null, null] });
  });

  test('over shards: names merge every shard\'s newest kept period, a series comes from the shard that has the name', async () => {
    const prefix = testPrefix('recent-shards');
    prefixes.push(prefix);
    const map = new ShardMap(4);
    const shards = map.tags.map((tag) => new RecentPeriods(redis, new Keys(prefix, tag)));
    const all = new RecentShards(shards);
    const bounds = { maxBytes: 1e9, maxPeriods: 10, ttlMs: 3_600_000 };
    assert.deepEqual(await all.names('', 10), { boundaryMs: null, names: [], truncated: false });
    // 40 names spread over the 4 shards by the shard map, as each shard's HistorySink keeps them.
    const names = Array.from({ length: 40 }, (_, i) => `stats.sh.m${String(i).padStart(2, '0')}`);
    const byShard = map.tags.map(() => [] as string[]);
    for (const n of names) byShard[map.of(n)]!.push(n);
    assert.ok(byShard.every((l) => l.length > 0), 'every shard holds some');
    // Periods T0 and T0+STEP on every shard; shard 3 lags a period behind (T0+2*STEP on the others only).
    for (let p = 0; p < 3; p++) {
      for (let sh = 0; sh < 4; sh++) {
        if (p === 2 && sh === 3) continue;
        const own = byShard[sh]!;
        await shards[sh]!.append(T0 + p * STEP, own, own.map((n) => String(100 * p + Number(n.slice(-2)))), own.length * 30, bounds);
      }
    }
    const listed = await all.names('stats.sh.', 500);
    assert.deepEqual(listed, { boundaryMs: T0 + 2 * STEP, names: [...names].sort(), truncated: false });
    const few = await all.names('stats.sh.', 7);
    assert.deepEqual(few, { boundaryMs: T0 + 2 * STEP, names: [...names].sort().slice(0, 7), truncated: true });
    assert.deepEqual((await all.names('m3', 500)).names, names.filter((n) => n.includes('m3')));
    assert.deepEqual(await all.periods(), [T0, T0 + STEP, T0 + 2 * STEP]);
    const t = [0, 1, 2].map((i) => (T0 + i * STEP) / 1000);
    for (const n of names) {
      const k = Number(n.slice(-2));
      const lagging = map.of(n) === 3;
      assert.deepEqual(await all.series(n), { t, v: [k, 100 + k, lagging ? null : 200 + k] }, `${n} (shard ${map.of(n)})`);
    }
    assert.deepEqual(await all.series('nope'), { t, v: [null, null, null] });
    // One shard: exactly that shard's answers.
    const one = new RecentShards([shards[0]!]);
    assert.deepEqual(await one.names('stats.sh.', 500), await shards[0]!.names('stats.sh.', 500));
    assert.deepEqual(await one.series(byShard[0]![0]!), await shards[0]!.series(byShard[0]![0]!));
  });
});
