/**
 * DESIGN.md's Redis invariants, against the real Redis through the Lua
 * scripts: at-most-once merges into the batch's own period, closes fenced by
 * the lease, in order, held back by a live member's watermark and not by a
 * dead one's, late merges refused, gauges applied in period order,
 * idempotent commits, and a pending period left by a crashed leader
 * processed by the next one.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { Batch } from '../../src/aggregate/batch.js';
import { encodeMerge } from '../../src/aggregate/merge-args.js';
import { loadConfig } from '../../src/config/load.js';
import { Flusher } from '../../src/flush/flusher.js';
import { createLogger } from '../../src/observability/logger.js';
import { SelfStats } from '../../src/observability/self-stats.js';
import { Store } from '../../src/store/store.js';
import { ManualClock } from '../helpers/manual-clock.js';
import { graphiteOnly, outboxEntries, outboxText } from '../helpers/outbox.js';
import { cleanup, REDIS_URL, testPrefix } from '../helpers/redis.js';
import { storeOnFreshPrefix } from '../helpers/store.js';

const log = createLogger('silent');
const P1 = 1_000_000;
const P2 = 1_001_000;
const TTL = 3000;

describe('redis invariants', () => {
  const prefix = testPrefix('store');
  let a: Store;
  let b: Store;

  before(async () => {
    a = await Store.open({ url: REDIS_URL, keyPrefix: prefix }, log);
    b = await Store.open({ url: REDIS_URL, keyPrefix: prefix }, log);
  });
  after(async () => {
    await a.quit();
    await b.quit();
    await cleanup(prefix);
  });

  test('a batch merged twice (a retry) counts once; its timer samples are stored exactly', async () => {
    const batch = new Batch();
    batch.counter('m.c', 3, 0.5);
    batch.timer('m.t', 0.1, 1);
    batch.timer('m.t', 1e-300, 1);
    batch.gauge('m.g', 5, false);
    batch.gauge('m.g', -2, true);
    batch.set('m.s', 'x');
    const args = encodeMerge(batch);
    assert.deepEqual(await a.merge('node:1', P1, 'm1', P2, args), { status: 'merged' });
    assert.deepEqual(await a.merge('node:1', P1, 'm1', P2, args), { status: 'duplicate' });
    const cur = await a.readCurrent();
    assert.equal(cur.counters.get('m.c'), 6);
    assert.equal(cur.gauges['m.g'], '3');
    assert.deepEqual(cur.timers.get('m.t'), [0.1, 1e-300]);
    assert.deepEqual(cur.sets, new Map([['m.s', new Set(['x'])]]));
  });

  test('float sums match JavaScript: stored as the sender\'s shortest text or, once summed, with %.17g; read back bit-exact', async () => {
    const batch = new Batch();
    batch.counter('f.c', 0.1, 1);
    await a.merge('node:2', P1, 'm1', P2, encodeMerge(batch));
    const again = new Batch();
    again.counter('f.c', 0.2, 1);
    await a.merge('node:3', P1, 'm1', P2, encodeMerge(again));
    assert.equal((await a.readCurrent()).counters.get('f.c'), 0.1 + 0.2);
  });

  test('closing is fenced by the lease and in order: a period closes once, an older one never', async () => {
    assert.equal(await a.tryAcquireLease('token-a', 60_000), 2);
    assert.equal(await a.tryAcquireLease('token-a', 60_000), 1, 'renewed');
    assert.equal(await b.tryAcquireLease('token-b', 60_000), 0);
    assert.deepEqual(await b.closePeriod('token-b', P1, TTL, 0), { status: 'not-leader' });
    assert.deepEqual(await a.pendingPeriods(), []);
    assert.deepEqual(await a.closePeriod('token-a', P1, TTL, 0), { status: 'closed' });
    assert.deepEqual(await a.closePeriod('token-a', P1, TTL, 0), { status: 'out-of-order', closedMs: P1 }, 'same period again');
    assert.deepEqual(await a.closePeriod('token-a', P1 - 1000, TTL, 0), { status: 'out-of-order', closedMs: P1 }, 'an older one');
    assert.deepEqual(await a.pendingPeriods(), [P1]);
    assert.equal((await a.readCurrent()).counters.size, 0, 'nothing is open');
    const raw = await a.readPeriod(P1);
    assert.equal(raw.counters.get('m.c'), 6);
    assert.equal(raw.gauges.get('m.g'), '3', 'the period holds a snapshot of the gauges');
    assert.deepEqual([...raw.gaugesTouched.keys()], ['m.g']);
  });

  test('a merge into a closed period is refused as late and changes nothing', async () => {
    const batch = new Batch();
    batch.counter('late.c', 1, 1);
    assert.deepEqual(await a.merge('node:late', P1, 'm1', P2, encodeMerge(batch)), { status: 'late', closedMs: P1 });
    assert.deepEqual(await a.merge('node:late', P2, 'm1', P2 + 1000, encodeMerge(batch)), { status: 'merged' }, 'the same id merges into an open period');
    assert.equal((await a.readCurrent()).counters.get('late.c'), 1);
  });

  test('a retry of a merge that ran (its reply lost) is a duplicate, not late, even once its period closed', async () => {
    const batch = new Batch();
    batch.counter('retry.c', 1, 1);
    const args = encodeMerge(batch);
    const P = P2 + 10_000;
    assert.deepEqual(await a.merge('node:retry', P, 'm1', P + 1000, args), { status: 'merged' });
    assert.deepEqual(await a.redis.set(a.keys.closed, String(P)), 'OK'); // the leader closed P meanwhile
    assert.deepEqual(await a.merge('node:retry', P, 'm1', P + 1000, args), { status: 'duplicate' });
    await a.redis.set(a.keys.closed, String(P1)); // back to where the tests below expect it
    await a.redis.del(a.keys.period(P, 'parts'));
    await a.redis.zrem(a.keys.open, String(P));
    await a.leave('m1');
  });

  test("a late batch's gauge values give way to the period's own, which are newer", async () => {
    const P = P2 + 20_000;
    const own = new Batch();
    own.gauge('late.s', 7, false);
    own.gauge('late.d', 2, true);
    await a.merge('g:own', P, 'm1', P + 1000, encodeMerge(own));
    const held = new Batch(); // received in an older period, which closed without it
    held.gauge('late.s', 1, false);
    held.gauge('late.d', 10, false);
    held.gauge('late.n', 4, false);
    await a.merge('g:held', P, 'm1', P + 1000, encodeMerge(held), true);
    const ops = await a.redis.hgetall(a.keys.period(P, 'gauges'));
    assert.deepEqual(ops, { 'late.s': 's7', 'late.d': 's12', 'late.n': 's4' });
    await a.redis.del(a.keys.period(P, 'gauges'));
    await a.redis.zrem(a.keys.open, String(P));
    await a.leave('m1');
  });

  test('a live member that may still hold samples of a period holds its close; a dead one is given up', async () => {
    const k = a.keys;
    await a.heartbeat('m1', P2); // still in P2
    assert.deepEqual(await a.closePeriod('token-a', P2, TTL, 0), { status: 'waiting', member: 'm1', watermarkMs: P2 });
    await a.heartbeat('m1', P2 + 1000);
    await a.redis.hset(k.members, 'dead', `${Date.now() - 2 * TTL} ${P1}`);
    // Redis itself was away until a moment ago: no member is judged dead before a full ttl after that.
    assert.equal((await a.closePeriod('token-a', P2, TTL, Date.now())).status, 'waiting');
    const closed = await a.closePeriod('token-a', P2, TTL, 0);
    assert.equal(closed.status, 'closed');
    // The leader is told whom it gave up on, and how long that member had been silent (for its log).
    assert.equal(closed.gaveUp?.length, 1, JSON.stringify(closed));
    assert.equal(closed.gaveUp[0]?.member, 'dead');
    assert.ok((closed.gaveUp[0]?.silentMs ?? 0) >= 2 * TTL && (closed.gaveUp[0]?.silentMs ?? 0) < 2 * TTL + 5000, JSON.stringify(closed));
    assert.equal(await a.redis.hexists(k.members, 'dead'), 0, 'the dead member was removed');
    await a.leave('m1');
    assert.equal(await a.redis.hlen(k.members), 0);
  });

  test('a period that holds data is never skipped; empty ones may be', async () => {
    const batch = new Batch();
    batch.counter('skip.c', 1, 1);
    await a.merge('node:skip', P2 + 2000, 'm1', P2 + 3000, encodeMerge(batch));
    assert.deepEqual(await a.closePeriod('token-a', P2 + 3000, TTL, 0), { status: 'out-of-order', closedMs: P2 });
    assert.deepEqual(await a.closePeriod('token-a', P2 + 2000, TTL, 0), { status: 'closed' }, 'P2 + 1000 was empty');
    await a.leave('m1');
  });

  test('gauges keep "last value wins" in period order, whatever order the batches merge in', async () => {
    const later = new Batch();
    later.gauge('o.g', 7, false);
    const earlier = new Batch();
    earlier.gauge('o.g', 1, false);
    earlier.gauge('o.d', 2, true);
    const delta = new Batch();
    delta.gauge('o.d', 3, true);
    await a.merge('g:later', P2 + 4000, 'm1', P2 + 5000, encodeMerge(later));
    await a.merge('g:delta', P2 + 4000, 'm1', P2 + 5000, encodeMerge(delta));
    await a.merge('g:earlier', P2 + 3000, 'm1', P2 + 5000, encodeMerge(earlier));
    assert.deepEqual(await a.closePeriod('token-a', P2 + 3000, TTL, 0), { status: 'closed' });
    assert.equal((await a.readPeriod(P2 + 3000)).gauges.get('o.g'), '1');
    assert.deepEqual(await a.closePeriod('token-a', P2 + 4000, TTL, 0), { status: 'closed' });
    const raw = await a.readPeriod(P2 + 4000);
    assert.equal(raw.gauges.get('o.g'), '7');
    assert.equal(raw.gauges.get('o.d'), '5');
    await a.leave('m1');
  });

  test('a stale leader can neither close, commit nor ack', async () => {
    await a.releaseLease('token-a');
    assert.equal(await b.tryAcquireLease('token-b', 60_000), 2);
    assert.deepEqual(await a.closePeriod('token-a', 2_000_000, TTL, 0), { status: 'not-leader' });
    const payload = { chunks: ['x 1 1\n'], gaugeTtl: [], gaugeDeletes: [], outboxMaxBytes: 10 };
    assert.deepEqual(await a.commit('token-a', 1_000_000, payload), { status: -1, droppedLines: 0, droppedBytes: 0 });
    assert.equal(await a.claimOutbox('token-a', 'graphite', 1 << 20, 10), null);
    assert.equal(await a.ackOutbox('token-a', 'graphite', '1-0'), -1);
    assert.equal((await a.outboxStats()).entries, 0);
  });

  test("a crashed leader's pending period is processed by the next leader, once", async () => {
    const { config } = loadConfig({
      file: null,
      env: {},
      overrides: { graphiteHost: '127.0.0.1', flushInterval: 1000, redis: { url: REDIS_URL, keyPrefix: prefix } },
    });
    // token-b holds the lease and "crashed" after closing P1 .. P2 + 4000; a new process takes over once it expires.
    await b.releaseLease('token-b');
    const next = new Flusher(a, config, new SelfStats(), log, undefined, new ManualClock(), graphiteOnly(config));
    assert.equal(await a.tryAcquireLease(next.token, 60_000), 2);
    await next.start();
    await next.kickProcessing();
    await next.stop();
    assert.ok(!(await a.pendingPeriods()).includes(P1));
    const text = await outboxText(a);
    assert.match(text, /^stats_counts\.m\.c 6 1000$/m);
    assert.match(text, /^stats\.timers\.m\.t\.count 2 1000$/m);
    assert.match(text, /^stats\.gauges\.m\.g 3 1000$/m);
    assert.match(text, /^stats\.sets\.m\.s\.count 1 1000$/m);
    // Committing the same period again is a no-op.
    const payload = { chunks: ['dup 1 1\n'], gaugeTtl: [], gaugeDeletes: [], outboxMaxBytes: 1 << 20 };
    assert.equal(await a.tryAcquireLease('token-c', 60_000), 2);
    assert.equal((await a.commit('token-c', 1_000_000, payload)).status, 0);
    assert.doesNotMatch(await outboxText(a), /^dup /m);
    const entries = await outboxEntries(a);
    assert.equal((await a.outboxStats()).bytes, entries.reduce((n, e) => n + e.b, 0), 'outbox_bytes is the sum of b');
  });
});

describe('known names (statsd re-emits idle counters as 0)', () => {
  const { prefix, store } = storeOnFreshPrefix('known');

  test("the leader's copy of known names is re-read after the console deletes one", async () => {
    const s = store();
    const { config } = loadConfig({
      file: null,
      env: {},
      overrides: { graphiteHost: '127.0.0.1', flushInterval: 600_000, redis: { url: REDIS_URL, keyPrefix: prefix } },
    });
    // Closes are the test's: the flusher's own timers never fire.
    const f = new Flusher(s, config, new SelfStats(), log, undefined, new ManualClock(), graphiteOnly(config));
    assert.equal(await s.tryAcquireLease(f.token, 60_000), 2);
    await f.start();
    after(() => f.stop());
    const batch = new Batch();
    batch.counter('k.a', 1, 1);
    batch.counter('k.b', 1, 1);
    await s.merge('k:1', 1_000_000, 'k', 1_001_000, encodeMerge(batch));
    await s.leave('k');
    const period = async (ts: number): Promise<string> => {
      assert.deepEqual(await s.closePeriod(f.token, ts * 1000, TTL, 0), { status: 'closed' });
      await f.kickProcessing();
      return (await outboxText(s)).split('\n').filter((l) => l.endsWith(` ${ts}`)).join('\n');
    };
    const first = await period(1000);
    assert.match(first, /^stats_counts\.k\.a 1 1000$/m);
    assert.match(first, /^stats_counts\.k\.b 1 1000$/m);
    assert.deepEqual((await s.readKnown()).counters.sort(), ['k.a', 'k.b']);
    // Idle: both re-emitted as 0 from the cached known names.
    assert.match(await period(2000), /^stats_counts\.k\.a 0 2000$/m);
    await s.deleteNames('counters', ['k.a']);
    const third = await period(3000);
    assert.doesNotMatch(third, /k\.a/);
    assert.match(third, /^stats_counts\.k\.b 0 3000$/m);
  });
});

describe("a committed period's keys", () => {
  const { store } = storeOnFreshPrefix('store-commit-keys');

  test('the commit unlinks every key of the period: its parts, gauge ops and snapshot, its name count and compaction count', async () => {
    const s = store();
    assert.equal(await s.tryAcquireLease('tok', 60_000), 2);
    const b = new Batch();
    b.counter('keys.c', 1, 1);
    b.gauge('keys.g', 1, false);
    await s.merge('K:1', P1, 'm', P2, encodeMerge(b));
    await s.merge('K:2', P1, 'm', P2, encodeMerge(b));
    assert.equal((await s.compactPeriod(P1)).status, 'compacted');
    await s.leave('m');
    assert.equal((await s.closePeriod('tok', P1, TTL, 0)).status, 'closed');
    const keys = s.keys.periodKeys(P1);
    assert.equal(await s.redis.exists(...keys), keys.length, `every key of the period is there before: ${keys.join(' ')}`);
    const payload = { chunks: [], gaugeTtl: [], gaugeDeletes: [], outboxMaxBytes: 1 << 20 };
    assert.equal((await s.commit('tok', P1, payload)).status, 1);
    assert.equal(await s.redis.exists(...keys), 0);
  });
});

describe('a closed period of 120k names a type', () => {
  const { store } = storeOnFreshPrefix('store-big');

  test('is read and folded whole and exact: counters, timer samples and set members', async () => {
    const s = store();
    const N = 120_000;
    const batch = new Batch();
    for (let i = 0; i < N; i++) {
      batch.counter(`big.c.${i}`, (i % 7) + 0.5, 1);
      batch.timer(`big.t.${i}`, i / 4, 1);
      batch.set('big.s', `m${i}`);
    }
    assert.deepEqual(await s.merge('big:1', P1, 'm1', P2, encodeMerge(batch)), { status: 'merged' });
    assert.equal(await s.tryAcquireLease('tok', 60_000), 2);
    assert.deepEqual(await s.closePeriod('tok', P1, TTL, 0), { status: 'closed' });
    const raw = await s.readPeriod(P1);
    assert.equal(raw.counters.size, N);
    assert.equal(raw.timers.size, N);
    assert.equal(raw.timerCounts.size, N);
    assert.equal(raw.sets.get('big.s')?.size, N);
    for (let i = 0; i < N; i++) {
      assert.equal(raw.counters.get(`big.c.${i}`), (i % 7) + 0.5);
      assert.deepEqual(raw.timers.get(`big.t.${i}`), [i / 4]);
    }
  });
});
