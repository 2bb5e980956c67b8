/**
 * redis.waitReplicas against the shared Redis, which has no replica: every
 * WAIT confirms 0 replicas. A merge then is not counted as merged (a
 * StoreError EREDIS_WAIT, never a ReplyError, so the batcher keeps the batch
 * and retries it rather than counting a rejection), though the master holds
 * it: a retry is recognised (merged once). The member's heartbeat still
 * names the batch's period, so the leader keeps waiting for it. waitReplicas 0
 * sends no WAIT at all. An unconfirmed commit counts as done, with its result
 * (what the outbox bound dropped), and is logged.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { Batch } from '../../src/aggregate/batch.js';
import { encodeMerge } from '../../src/aggregate/merge-args.js';
import { createLogger } from '../../src/observability/logger.js';
import { StoreError } from '../../src/store/errors.js';
import { Store } from '../../src/store/store.js';
import { cleanup, client, openCounter, REDIS_URL, testPrefix } from '../helpers/redis.js';

const log = createLogger('silent');
const TTL = 3000;
const P1 = 1_000_000;
const P2 = 1_001_000;

describe('redis.waitReplicas', () => {
  const prefix = testPrefix('store-wait');
  let waiting: Store;
  let plain: Store;

  before(async () => {
    waiting = await Store.open({ url: REDIS_URL, keyPrefix: prefix, waitReplicas: 1, waitTimeout: 20 }, log);
    plain = await Store.open({ url: REDIS_URL, keyPrefix: prefix, waitReplicas: 0 }, log);
  });
  after(async () => {
    await waiting.quit();
    await plain.quit();
    await cleanup(prefix);
  });

  test('a batch retried for longer than the 15-minute dedupe window (a long replica outage) still merges once', async () => {
    const b = new Batch();
    b.counter('window.c', 5, 1);
    const args = encodeMerge(b);
    await assert.rejects(waiting.merge('W:1', P1, 'mW', P2, args)); // ran on the master; WAIT saw no replica
    const realNow = Date.now;
    try {
      for (const minutes of [10, 20, 30]) {
        Date.now = () => realNow() + minutes * 60_000;
        // Another member's merge trims ids older than the window from the dedupe set...
        const o = new Batch();
        o.counter('window.other', 1, 1);
        assert.deepEqual(await plain.merge(`O:${minutes}`, P1, 'mO', P2, encodeMerge(o)), { status: 'merged' });
        // ...but every retry of W:1 renewed its id, so it is still a duplicate.
        await assert.rejects(waiting.merge('W:1', P1, 'mW', P2, args));
      }
    } finally {
      Date.now = realNow;
      // Their heartbeats are in the future now: gone, so the next tests' periods do not wait for them.
      await plain.leave('mW');
      await plain.leave('mO');
    }
    assert.equal(await openCounter(prefix, 'window.c'), 5);
  });

  test('a merge no replica confirmed is an EREDIS_WAIT StoreError; its retries count once; the heartbeat holds its period', async () => {
    const r = client();
    try {
      const replicas = Number(/connected_slaves:(\d+)/.exec(await r.info('replication'))?.[1] ?? '0');
      assert.equal(replicas, 0, 'this test needs a Redis without replicas at REDIS_URL');
      const batch = new Batch();
      batch.counter('w.c', 5, 1);
      const args = encodeMerge(batch);
      for (let attempt = 0; attempt < 3; attempt++) {
        await assert.rejects(waiting.merge('w:1', P1, 'm1', P2, args), (err: unknown) => {
          assert.ok(err instanceof StoreError, String(err));
          assert.equal(err.code, 'EREDIS_WAIT');
          assert.equal(err.message, '0 of 1 replicas confirmed the write within redis.waitTimeout (20 ms; redis.waitReplicas); kept and retried');
          return true;
        });
      }
      assert.equal(await openCounter(prefix, 'w.c'), 5, 'on the master once, however often it was retried');
      const member = await r.hget(waiting.keys.members, 'm1');
      assert.ok(member !== null);
      assert.equal(member.split(' ')[1], String(P1), "the heartbeat names the batch's own period, not the watermark past it");
      // Without WAIT the same retry is a plain duplicate.
      assert.deepEqual(await plain.merge('w:1', P1, 'm1', P2, args), { status: 'duplicate' });
    } finally {
      r.disconnect();
    }
  });

  test('a commit no replica confirmed counts as done, with what the outbox bound dropped', async () => {
    assert.equal(await plain.tryAcquireLease('token-w', 60_000), 2);
    await plain.leave('m1');
    assert.deepEqual(await plain.closePeriod('token-w', P1, TTL, 0), { status: 'closed' });
    // A bound of 10 bytes: the commit drops its own 2 lines (16 bytes) and says so.
    const payload = { chunks: ['w.a 1 1\nw.b 2 1\n'], gaugeTtl: [], gaugeDeletes: [], outboxMaxBytes: 10 };
    assert.deepEqual(await waiting.commit('token-w', P1, payload), { status: 1, droppedLines: 2, droppedBytes: 16 });
    assert.deepEqual(await waiting.pendingPeriods(), [], 'committed');
  });
});
