/**
 * ShardLeases against a real Redis (the flushers hash): a process that stopped heartbeating leaves the ranking as
 * soon as its entry is leaseTtl old, judged when a Flusher asks, not at this process's next heartbeat (so a dead
 * process's shards move within leaseTtl plus one lease check).
 */
import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import { ShardLeases, rankFor } from '../../src/flush/shard-leases.js';
import { createLogger } from '../../src/observability/logger.js';
import { Store } from '../../src/store/store.js';
import { ManualClock } from '../helpers/manual-clock.js';
import { cleanup, REDIS_URL, testPrefix } from '../helpers/redis.js';

const TTL = 3000;
const SHARDS = 8;

describe('ShardLeases: liveness judged when asked', () => {
  const prefix = testPrefix('shard-leases-live');
  after(() => cleanup(prefix));

  it('a token whose heartbeat turns leaseTtl old drops out of prefers() without a new heartbeat read', async () => {
    const store = await Store.open({ url: REDIS_URL, keyPrefix: prefix, shards: SHARDS }, createLogger('silent'));
    const clock = new ManualClock(1_000_000_000_000);
    const me = 'token-me';
    // Another process, heartbeating up to now: it ranks first for some shards.
    const other = 'token-other';
    await store.redis.hset(store.keys.flushers, other, String(clock.now()));
    const leases = new ShardLeases(store, me, TTL, createLogger('silent'), clock);
    try {
      await leases.start();
      const theirs = Array.from({ length: SHARDS }, (_, s) => s).filter((s) => rankFor([me, other], s)[0] === other);
      assert.ok(theirs.length > 0, 'the other token ranks first somewhere (else pick other tokens)');
      for (let s = 0; s < SHARDS; s++) assert.equal(leases.prefers(s), !theirs.includes(s), `shard ${s} with both alive`);
      // The other process dies: no more heartbeats. Just past leaseTtl (before this process's next heartbeat at ttl/3
      // intervals would have re-read the hash), every shard is preferred here.
      clock.advance(TTL + 1); // fires the heartbeat timer, whose read of the hash has not come back when prefers() is asked below
      for (let s = 0; s < SHARDS; s++) assert.equal(leases.prefers(s), true, `shard ${s} once the other's heartbeat is leaseTtl old`);
      assert.deepEqual(leases.preferred(SHARDS), Array.from({ length: SHARDS }, (_, s) => s));
    } finally {
      await leases.stop();
      await store.quit();
    }
  });
});
