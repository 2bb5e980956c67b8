/**
 * maxNamesPerPeriod against the real Redis: two Batchers (two processes'
 * worth) merge into one period through mergeBatch-11.lua, and the leader's
 * fold (Store.readPeriod) applies the bound to counters, timers and sets in
 * merge order, after the gauges the merges admitted: the period takes the
 * first N distinct names whatever process sent them, refuses samples of new
 * names past them (counted once a part, even when a batch is retried), and
 * keeps merging the names it holds; tallyd's own counters always come in.
 * The parts' byte budget refuses a part whole and counts its names.
 */
import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { after, before, describe, test } from 'node:test';
import { Batch } from '../../src/aggregate/batch.js';
import { Batcher, oneShard, type MergeTarget } from '../../src/aggregate/batcher.js';
import { encodeMerge } from '../../src/aggregate/merge-args.js';
import { loadConfig } from '../../src/config/load.js';
import { Flusher } from '../../src/flush/flusher.js';
import { createLogger } from '../../src/observability/logger.js';
import { SelfStats } from '../../src/observability/self-stats.js';
import { partsBudget, Store } from '../../src/store/store.js';
import { ManualClock } from '../helpers/manual-clock.js';
import { cleanup, REDIS_URL, testPrefix } from '../helpers/redis.js';

const log = createLogger('silent');
const I = 10_000;
/** The period both batchers collect: the clock stands inside it. */
const P = 1_000_000_000_000;
const BOUND = 6;
const opts = { batchInterval: 1e9, flushInterval: I, leaseTtl: 60_000, maxPendingBatches: 100, prefixStats: 'statsd', maxBatchNames: 1e6, maxNamesPerPeriod: BOUND };
const ingest = { metricsReceived: 0, badLines: 0 };

/** A log stream that keeps each line (JSON) it is given. */
function warningSink(): { warnings: string[]; sink: Writable } {
  const warnings: string[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _enc, done) {
      warnings.push(chunk.toString());
      done();
    },
  });
  return { warnings, sink };
}

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
  const bound = { maxNames: BOUND, exemptPrefix: 'statsd.' };

  before(async () => {
    store = await Store.open({ url: REDIS_URL, keyPrefix: prefix }, log);
  });
  after(async () => {
    await store.quit();
    await cleanup(prefix);
  });

  async function flushed(b: Batcher): Promise<void> {
    b.tick();
    await until(() => b.backlog === 0, 'the merge');
  }

  /** Closes period p (every member gone) and reads it as its leader does, folded under the bound. */
  async function closeAndRead(p: number): ReturnType<Store['readPeriod']> {
    await store.redis.del(store.keys.members);
    await store.tryAcquireLease('tok', 60_000);
    assert.equal((await store.closePeriod('tok', p, 60_000, 0, p + I)).status, 'closed');
    return store.readPeriod(p, bound);
  }

  test('two processes fill one period: the first names are kept exactly, new ones dropped and counted, held ones still merge', async () => {
    const selfA = new SelfStats();
    const selfB = new SelfStats();
    const a = new Batcher(store, opts, selfA, ingest, log, clock);
    const b = new Batcher(store, opts, selfB, ingest, log, clock);
    // A persistent gauge (held from an earlier period) is not new to any period.
    await store.redis.hset(store.keys.gauges, 'g.held', '7');

    a.counter('c.0', 1, 1);
    a.counter('c.1', 2, 1);
    a.timer('t.0', 5, 1);
    await flushed(a);
    b.counter('c.0', 10, 1); // held: merges
    b.counter('c.2', 3, 0.5);
    b.set('s.0', 'x');
    b.set('s.0', 'y');
    b.gauge('g.0', 4, false); // admitted by the merge: the gauges are counted first
    b.counter('c.3', 1, 1);
    await flushed(b);
    a.counter('c.1', 5, 1); // held
    a.counter('c.new', 1, 1);
    a.timer('t.0', 6, 1); // held
    a.timer('t.new', 1, 1); // dropped with its samples and count
    a.gauge('g.held', 1, true); // held in the persistent gauges: not new
    a.gauge('g.new', 1, false); // admitted by the merge (2 gauges then)
    a.set('s.new', 'z');
    await flushed(a);
    assert.equal(selfA.namesDropped + selfB.namesDropped, 0, 'the merges dropped no gauge');
    assert.equal(await store.redis.get(store.keys.period(P, 'names')), '2', 'the merges counted their gauges');

    // The fold counts on from 2: c.0, c.1, t.0 (5), c.2 (6: full); then c.3 and s.0 (B's part), c.new, t.new and
    // s.new (A's second part) are dropped, once each.
    const raw = await closeAndRead(P);
    assert.deepEqual(raw.counters, new Map([['c.0', 11], ['c.1', 7], ['c.2', 6]]));
    assert.deepEqual(raw.timerCounts, new Map([['t.0', 2]]));
    assert.deepEqual(raw.timers, new Map([['t.0', [5, 6]]]));
    assert.equal(raw.sets.size, 0, 's.0 came after the bound: both its members are dropped');
    assert.deepEqual(raw.gaugesTouched, new Map([['g.0', 's4'], ['g.held', 'd1'], ['g.new', 's1']]));
    assert.equal(raw.dropped, 5);
    assert.deepEqual(raw.droppedExamples, ['c.3', 's.0', 'c.new', 't.new', 's.new']);
  });

  test('the gauges are bounded at the merge: a new gauge past the bound is dropped and counted by its sender, with a warning', async () => {
    const P2 = P + I;
    const clock2 = new ManualClock(P2 - I / 2);
    const self = new SelfStats();
    const { warnings, sink } = warningSink();
    const a = new Batcher(store, opts, self, ingest, createLogger('warn', sink), clock2);
    for (let i = 0; i < BOUND + 2; i++) a.gauge(`gb.${i}`, i, false);
    a.counter('c.after', 1, 1); // the gauges filled the period: dropped at the fold
    await flushed(a);
    assert.equal(self.namesDropped, 2);
    const warned = warnings.map((w) => JSON.parse(w) as Record<string, unknown>).find((w) => String(w.msg).includes('maxNamesPerPeriod'));
    assert.ok(warned, 'a warning says names were dropped');
    assert.equal(warned.dropped, 2);
    assert.equal(warned.maxNamesPerPeriod, BOUND);
    for (const name of ['gb.6', 'gb.7']) assert.ok(String(warned.examples).includes(name), `the warning names ${name}`);
    // tallyd's own counter of the drops comes in with the next batch, past the bound.
    await flushed(a);
    const raw = await closeAndRead(P2);
    assert.equal(raw.gaugesTouched.size, BOUND);
    assert.deepEqual([...raw.counters], [['statsd.names_dropped', 2]], 'its own counters are never dropped');
    assert.equal(raw.dropped, 1);
    assert.deepEqual(raw.droppedExamples, ['c.after']);
  });

  test('a retried batch (same id) does not merge twice, and its drops are counted once even when the first reply was lost', async () => {
    const P3 = P + 2 * I;
    const clock3 = new ManualClock(P3 - I / 2);
    const full = new Batch();
    for (let i = 0; i < BOUND + 1; i++) full.gauge(`gr.${i}`, i, false);
    full.counter('statsd.retry', 1, 1); // tallyd's own: past the full period, to count merges by
    const args = encodeMerge(full, 'statsd.');
    const first = await store.merge('retry:1', P3, 'm', P3, args, false, bound);
    assert.equal(first.status, 'merged');
    assert.equal(first.status === 'merged' ? first.namesDropped : -1, 1);
    assert.deepEqual(first.status === 'merged' ? first.droppedExamples : [], [`gr.${BOUND}`]);
    assert.deepEqual(await store.merge('retry:1', P3, 'm', P3, args, false, bound), { status: 'duplicate', namesDropped: 1 });

    // A Batcher whose first merge ran in Redis but whose reply was lost (a timeout): the retry is a duplicate
    // that hands back the first attempt's drops, counted once.
    let lost = 1;
    const lossy: MergeTarget = {
      merge: async (...m: Parameters<MergeTarget['merge']>) => {
        const res = await store.merge(...m);
        if (lost-- > 0) throw new Error('Command timed out');
        return res;
      },
      heartbeat: (m, w) => store.heartbeat(m, w),
      leave: (m) => store.leave(m),
    };
    const self = new SelfStats();
    const c = new Batcher(oneShard(lossy), opts, self, ingest, log, clock3);
    c.counter('statsd.retry', 1, 1);
    c.gauge('gr.lost.1', 1, false);
    c.gauge('gr.lost.2', 1, false);
    c.tick();
    await until(() => self.mergeErrors === 1 && c.backlog === 1, 'the lost reply');
    await c.stop(5000); // retries: a duplicate
    assert.equal(self.namesDropped, 2);
    const raw = await closeAndRead(P3);
    assert.equal(raw.counters.get('statsd.retry'), 2, 'each batch merged once');
  });

  test("the parts' byte budget: a part past it is refused whole and counted as its names; tallyd's own counters still come in", async () => {
    const P4 = P + 3 * I;
    const big = new Batch();
    // Each counter entry is 4 + name + 8 bytes, over 16; the budget is the floor's (1 MiB) for a bound this small.
    const n = Math.ceil(partsBudget(BOUND) / 16) + 1;
    for (let i = 0; i < n; i++) big.counter(`budget.c.${i}`, 1, 1);
    big.counter('statsd.metrics_received', 3, 1);
    const res = await store.merge('budget:1', P4, 'm', P4, encodeMerge(big, 'statsd.'), false, bound);
    assert.equal(res.status, 'merged');
    assert.equal(res.status === 'merged' ? res.namesDropped : -1, n);
    assert.deepEqual(res.status === 'merged' ? res.droppedExamples : [], Array.from({ length: 5 }, (_, i) => `budget.c.${i}`));
    const raw = await closeAndRead(P4);
    assert.deepEqual([...raw.counters], [['statsd.metrics_received', 3]]);
  });
});

describe("maxNamesPerPeriod: the leader's fold counts what it drops", () => {
  const prefix = testPrefix('card-leader');
  after(() => cleanup(prefix));

  test('a Flusher folding a full period adds its drops to names_dropped and warns, quoting a few', async () => {
    const { config } = loadConfig({
      file: null,
      env: {},
      overrides: { graphiteHost: '127.0.0.1', flushInterval: 2000, maxNamesPerPeriod: 3, redis: { url: REDIS_URL, keyPrefix: prefix, shards: 1 } },
    });
    const store = await Store.open(config.redis, log);
    try {
      // The last period that is over, merged into as a process would have (then gone: nothing to wait for).
      const boundary = Math.floor(Date.now() / 2000) * 2000;
      const batch = new Batch();
      for (const n of ['a', 'b', 'c', 'd', 'e']) batch.counter(`lead.${n}`, 1, 1);
      const bound = { maxNames: 3, exemptPrefix: 'statsd.' };
      assert.deepEqual(await store.merge('lead:1', boundary, 'm', boundary, encodeMerge(batch, 'statsd.'), false, bound), { status: 'merged' });
      await store.leave('m');
      const self = new SelfStats();
      const { warnings, sink } = warningSink();
      let committed!: () => void;
      const done = new Promise<void>((resolve) => (committed = resolve));
      const flusher = new Flusher(store, config, self, createLogger('warn', sink), () => committed());
      await flusher.start();
      await done;
      await flusher.stop();
      assert.equal(self.namesDropped, 2);
      const warned = warnings.map((w) => JSON.parse(w) as Record<string, unknown>).find((w) => String(w.msg).includes('maxNamesPerPeriod'));
      assert.ok(warned, 'the leader warns');
      assert.equal(warned.dropped, 2);
      assert.equal(warned.examples, 'lead.d lead.e');
    } finally {
      await store.quit();
    }
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
    const res = await store.merge('u:1', P, 'm', P, encodeMerge(batch), false, { maxNames: 0, exemptPrefix: 'statsd.' });
    assert.deepEqual(res, { status: 'merged' });
    await store.leave('m');
    await store.tryAcquireLease('tok', 60_000);
    assert.equal((await store.closePeriod('tok', P, 60_000, 0, P + I)).status, 'closed');
    const raw = await store.readPeriod(P, { maxNames: 0, exemptPrefix: 'statsd.' });
    assert.equal(raw.counters.size, 2500);
    assert.equal(raw.sets.get('s')?.size, 10);
    assert.equal(raw.dropped, 0);
  });
});
