/**
 * maxNamesPerPeriod against the real Redis: two Batchers (two processes'
 * worth) merge into one period through mergeBatch-15.lua; the period takes
 * the first N distinct names whatever process sent them, refuses samples of
 * new names past them (counted once, even when a batch is retried), and
 * keeps merging the names it holds.
 */
import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { after, before, describe, test } from 'node:test';
import { Batch } from '../../src/aggregate/batch.js';
import { Batcher, oneShard, type MergeTarget } from '../../src/aggregate/batcher.js';
import { encodeMerge } from '../../src/aggregate/merge-args.js';
import { createLogger } from '../../src/observability/logger.js';
import { SelfStats } from '../../src/observability/self-stats.js';
import { Store } from '../../src/store/store.js';
import { ManualClock } from '../helpers/manual-clock.js';
import { cleanup, REDIS_URL, testPrefix } from '../helpers/redis.js';

const log = createLogger('silent');
const I = 10_000;
/** The period both batchers collect: the clock stands inside it. */
const P = 1_000_000_000_000;
const BOUND = 6;
const opts = { batchInterval: 1e9, flushInterval: I, leaseTtl: 60_000, maxPendingBatches: 100, prefixStats: 'statsd', maxBatchNames: 1e6, maxNamesPerPeriod: BOUND };
const ingest = { metricsReceived: 0, badLines: 0 };

async function until(cond: () => boolean | Promise<boolean>, what: string, timeoutMs = 10_000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!(await cond())) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setImmediate(r));
  }
}

describe('maxNamesPerPeriod', () => {
  const prefix = testPrefix('card');
  let store: Store;
  const clock = new ManualClock(P - I / 2);

  before(async () => {
    store = await Store.open({ url: REDIS_URL, keyPrefix: prefix }, log);
  });
  after(async () => {
    await store.quit();
    await cleanup(prefix);
  });

  async function period(part: 'counters' | 'timer_counts' | 'timers' | 'gauges' | 'sets'): Promise<Record<string, string>> {
    return store.redis.hgetall(store.keys.period(P, part));
  }

  async function flushed(b: Batcher): Promise<void> {
    b.tick();
    await until(() => b.backlog === 0, 'the merge');
  }

  test('two processes fill one period: the first names are kept exactly, new ones dropped and counted, held ones still merge', async () => {
    const selfA = new SelfStats();
    const selfB = new SelfStats();
    const warnings: string[] = [];
    const sink = new Writable({
      write(chunk: Buffer, _enc, done) {
        warnings.push(chunk.toString());
        done();
      },
    });
    const a = new Batcher(store, opts, selfA, ingest, createLogger('warn', sink), clock);
    const b = new Batcher(store, opts, selfB, ingest, log, clock);
    // A persistent gauge (held from an earlier period) is not new to any period.
    await store.redis.hset(store.keys.gauges, 'g.held', '7');

    a.counter('c.0', 1, 1);
    a.counter('c.1', 2, 1);
    a.timer('t.0', 5, 1);
    await flushed(a); // 3 names
    b.counter('c.0', 10, 1); // held: merges
    b.counter('c.2', 3, 0.5); // 4th
    b.set('s.0', 'x'); // 5th
    b.set('s.0', 'y');
    b.gauge('g.0', 4, false); // 6th: the period is full now
    b.counter('c.3', 1, 1); // counters merge first: c.2 is the 4th, c.3 the 5th ...
    await flushed(b);
    // Counters go first in a merge (c.2, c.3), then timers, gauges (g.0 the 6th: full), sets (s.0: dropped).
    assert.deepEqual(await period('counters'), { 'c.0': '11', 'c.1': '2', 'c.2': '6', 'c.3': '1' });
    assert.deepEqual(await period('gauges'), { 'g.0': 's4' });
    assert.deepEqual(await period('sets'), {}, 's.0 came after the bound: both its members are dropped');
    assert.equal(selfB.namesDropped, 1);
    assert.equal(await store.redis.get(store.keys.period(P, 'names')), String(BOUND));

    a.counter('c.1', 5, 1); // held
    a.counter('c.new', 1, 1); // dropped
    a.timer('t.0', 6, 1); // held
    a.timer('t.new', 1, 1); // dropped: no samples, no count
    a.gauge('g.held', 1, true); // held in the persistent gauges: not new
    a.gauge('g.new', 1, false); // dropped
    a.set('s.new', 'z'); // dropped
    await flushed(a);
    assert.equal(selfA.namesDropped, 4);
    const warned = warnings.map((w) => JSON.parse(w) as Record<string, unknown>).find((w) => String(w.msg).includes('maxNamesPerPeriod'));
    assert.ok(warned, 'a warning says names were dropped');
    assert.equal(warned.dropped, 4);
    assert.equal(warned.maxNamesPerPeriod, BOUND);
    for (const name of ['c.new', 't.new', 'g.new', 's.new']) assert.ok(String(warned.examples).includes(name), `the warning names ${name}`);
    const counters = await period('counters');
    assert.equal(counters['c.1'], '7');
    assert.equal(counters['c.new'], undefined);
    assert.deepEqual(await period('timer_counts'), { 't.0': '2' });
    assert.deepEqual(Object.keys(await period('timers')).map((f) => f.split('\n')[0]).sort(), ['t.0', 't.0']);
    assert.deepEqual(await period('gauges'), { 'g.0': 's4', 'g.held': 'd1' });
    assert.deepEqual(await period('sets'), {});

    // The drops reach Redis as tallyd's own counter with the next batch; it is never dropped itself.
    await flushed(a);
    await flushed(b);
    const after = await period('counters');
    assert.equal(after['statsd.names_dropped'], '5', 'every dropped name once: 1 by B, 4 by A');
  });

  test('a retried batch (same id) does not merge twice, and its drops are counted once even when the first reply was lost', async () => {
    const full = new Batch();
    full.counter('c.0', 1, 1);
    full.counter('c.retry', 1, 1);
    const args = encodeMerge(full, 'retry:1');
    const bound = { maxNames: BOUND, exemptPrefix: 'statsd.' };
    const first = await store.merge('retry:1', P, 'm', P, args, false, bound);
    assert.equal(first.status, 'merged');
    assert.equal(first.status === 'merged' ? first.namesDropped : -1, 1);
    assert.deepEqual(first.status === 'merged' ? first.droppedExamples : [], ['c.retry']);
    assert.deepEqual(await store.merge('retry:1', P, 'm', P, args, false, bound), { status: 'duplicate', namesDropped: 1 });
    assert.equal((await period('counters'))['c.0'], '12', 'merged once');

    // A Batcher whose first merge ran in Redis but whose reply was lost (a timeout): the retry is a duplicate
    // that hands back the first attempt's drops, counted once.
    let lost = 1;
    const lossy: MergeTarget = {
      merge: async (...a: Parameters<MergeTarget['merge']>) => {
        const res = await store.merge(...a);
        if (lost-- > 0) throw new Error('Command timed out');
        return res;
      },
      heartbeat: (m, w) => store.heartbeat(m, w),
      leave: (m) => store.leave(m),
    };
    const self = new SelfStats();
    const c = new Batcher(oneShard(lossy), opts, self, ingest, log, clock);
    c.counter('c.0', 1, 1);
    c.counter('c.lost.1', 1, 1);
    c.counter('c.lost.2', 1, 1);
    c.tick();
    await until(() => self.mergeErrors === 1 && c.backlog === 1, 'the lost reply');
    await c.stop(5000); // retries: a duplicate
    assert.equal(self.namesDropped, 2);
    assert.equal((await period('counters'))['c.0'], '13', 'merged once');
  });

  test('closing the period deletes its name count and set names', async () => {
    await store.redis.hdel(store.keys.members, ...(await store.redis.hkeys(store.keys.members)));
    await store.tryAcquireLease('tok', 60_000);
    assert.equal((await store.closePeriod('tok', P, 60_000, 0, P + I)).status, 'closed');
    assert.equal(await store.redis.exists(store.keys.period(P, 'names'), store.keys.period(P, 'set_names')), 0);
  });
});

describe('maxNamesPerPeriod: 0 is unbounded', () => {
  const prefix = testPrefix('card0');
  let store: Store;
  before(async () => {
    store = await Store.open({ url: REDIS_URL, keyPrefix: prefix }, log);
  });
  after(async () => {
    await store.quit();
    await cleanup(prefix);
  });

  test('every name merges and none is counted', async () => {
    const batch = new Batch();
    for (let i = 0; i < 2500; i++) batch.counter(`n.${i}`, 1, 1);
    for (let i = 0; i < 10; i++) batch.set('s', `m${i}`);
    const res = await store.merge('u:1', P, 'm', P, encodeMerge(batch, 'u:1'), false, { maxNames: 0, exemptPrefix: 'statsd.' });
    assert.deepEqual(res, { status: 'merged' });
    assert.equal(await store.redis.hlen(store.keys.period(P, 'counters')), 2500);
    assert.equal(await store.redis.hlen(store.keys.period(P, 'sets')), 10);
    assert.equal(await store.redis.get(store.keys.period(P, 'names')), '2501');
  });
});
