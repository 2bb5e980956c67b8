/**
 * DESIGN.md's Redis invariants, against the real Redis through the Lua
 * scripts: at-most-once merges, fenced rotation, idempotent commits, and a
 * pending period left by a crashed leader processed by the next one.
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
import { graphiteOnly, outboxEntries, outboxText } from '../helpers/outbox.js';
import { cleanup, REDIS_URL, testPrefix } from '../helpers/redis.js';

const log = createLogger('silent');

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
    const args = encodeMerge(batch, 'node:1');
    assert.equal(await a.merge('node:1', args), true);
    assert.equal(await a.merge('node:1', args), false);
    const cur = await a.readCurrent();
    assert.equal(cur.counters['m.c'], '6');
    assert.equal(cur.gauges['m.g'], '3');
    const packed = cur.timers.get('m.t\nnode:1');
    assert.ok(packed);
    assert.deepEqual([packed.readDoubleLE(0), packed.readDoubleLE(8)], [0.1, 1e-300]);
    assert.deepEqual(cur.sets, ['m.s\nx']);
  });

  test('float sums match JavaScript: stored with %.17g, read back bit-exact', async () => {
    const batch = new Batch();
    batch.counter('f.c', 0.1, 1);
    await a.merge('node:2', encodeMerge(batch, 'node:2'));
    const again = new Batch();
    again.counter('f.c', 0.2, 1);
    await a.merge('node:3', encodeMerge(again, 'node:3'));
    assert.equal(Number((await a.readCurrent()).counters['f.c']), 0.1 + 0.2);
  });

  test('rotation is fenced by the lease: only the holder rotates, a boundary rotates once', async () => {
    assert.equal(await a.tryAcquireLease('token-a', 60_000), true);
    assert.equal(await b.tryAcquireLease('token-b', 60_000), false);
    assert.equal(await b.rotate('token-b', 1_000_000), -1, 'not the leader');
    assert.deepEqual(await a.pendingPeriods(), []);
    assert.equal(await a.rotate('token-a', 1_000_000), 1);
    assert.equal(await a.rotate('token-a', 1_000_000), 0, 'same boundary again');
    assert.equal(await a.rotate('token-a', 999_000), 0, 'an older boundary');
    assert.deepEqual(await a.pendingPeriods(), [1_000_000]);
    assert.deepEqual((await a.readCurrent()).counters, {}, 'the open period starts empty');
    const raw = await a.readPeriod(1_000_000);
    assert.equal(raw.counters.get('m.c'), '6');
    assert.equal(raw.gauges.get('m.g'), '3', 'the period holds a snapshot of the gauges');
  });

  test('a stale leader can neither rotate, commit nor ack', async () => {
    await a.releaseLease('token-a');
    assert.equal(await b.tryAcquireLease('token-b', 60_000), true);
    assert.equal(await a.rotate('token-a', 2_000_000), -1);
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
    // token-b holds the lease and "crashed" after rotating 1_000_000; a new process takes over once it expires.
    await b.releaseLease('token-b');
    const next = new Flusher(a, config, new SelfStats(), log, undefined, undefined, graphiteOnly(config));
    assert.equal(await a.tryAcquireLease(next.token, 60_000), true);
    await next.start();
    await next.kickProcessing();
    await next.stop();
    assert.deepEqual(await a.pendingPeriods(), []);
    const text = await outboxText(a);
    assert.match(text, /^stats_counts\.m\.c 6 1000$/m);
    assert.match(text, /^stats\.timers\.m\.t\.count 2 1000$/m);
    assert.match(text, /^stats\.gauges\.m\.g 3 1000$/m);
    assert.match(text, /^stats\.sets\.m\.s\.count 1 1000$/m);
    // Committing the same period again is a no-op.
    const payload = { chunks: ['dup 1 1\n'], gaugeTtl: [], gaugeDeletes: [], outboxMaxBytes: 1 << 20 };
    assert.equal(await a.tryAcquireLease('token-c', 60_000), true);
    assert.equal((await a.commit('token-c', 1_000_000, payload)).status, 0);
    assert.doesNotMatch(await outboxText(a), /^dup /m);
    const entries = await outboxEntries(a);
    assert.equal((await a.outboxStats()).bytes, entries.reduce((n, e) => n + e.b, 0), 'outbox_bytes is the sum of b');
  });
});

describe('known names (statsd re-emits idle counters as 0)', () => {
  const prefix = testPrefix('known');
  let s: Store;

  before(async () => {
    s = await Store.open({ url: REDIS_URL, keyPrefix: prefix }, log);
  });
  after(async () => {
    await s.quit();
    await cleanup(prefix);
  });

  test("the leader's copy of known names is re-read after the console deletes one", async () => {
    const { config } = loadConfig({
      file: null,
      env: {},
      overrides: { graphiteHost: '127.0.0.1', flushInterval: 600_000, redis: { url: REDIS_URL, keyPrefix: prefix } },
    });
    const f = new Flusher(s, config, new SelfStats(), log, undefined, undefined, graphiteOnly(config));
    assert.equal(await s.tryAcquireLease(f.token, 60_000), true);
    await f.start();
    after(() => f.stop());
    const batch = new Batch();
    batch.counter('k.a', 1, 1);
    batch.counter('k.b', 1, 1);
    await s.merge('k:1', encodeMerge(batch, 'k:1'));
    const period = async (ts: number): Promise<string> => {
      assert.equal(await s.rotate(f.token, ts * 1000), 1);
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
