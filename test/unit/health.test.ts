/** HealthFacts from fake providers and an injected clock: each rule, and the report is plain JSON. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { HealthFacts, OPERATOR_DOWN, STOPPING, type LossFacts, type RedisFacts, type ShardFacts } from '../../src/observability/health.js';

const INTERVAL = 10_000;
const T0 = 1_764_860_000_000;

const losses: LossFacts = { batchesDropped: 1, mergeErrors: 2, oversizedPackets: 3, outboxDropped: 4, carbonErrors: 5, udpKernelDrops: 6, redisTimeouts: 7, udpSocketErrors: 8, udpReadersStopped: 0 };

type FakeShard = ShardFacts & { last: number | null; outbox: { entries: number; bytes: number; oldestMs: number | null } };

/** A fake Redis of `count` shards: shard 0 answers as the Redis before shards did (last, 3 entries of 300 bytes). */
function fakeRedis(count = 1): RedisFacts & { last: number | null; down: string | null; hang: boolean; shards: FakeShard[] } {
  const redis = {
    down: null as string | null,
    hang: false,
    shards: [] as FakeShard[],
    get last(): number | null {
      return redis.shards[0]!.last;
    },
    set last(v: number | null) {
      redis.shards[0]!.last = v;
    },
    ping(): Promise<number> {
      return redis.down ? Promise.reject(new Error(redis.down)) : Promise.resolve(0.25);
    },
  };
  for (let i = 0; i < count; i++) {
    redis.shards.push({
      last: null,
      outbox: i === 0 ? { entries: 3, bytes: 300, oldestMs: T0 - 2000 } : { entries: 0, bytes: 0, oldestMs: null },
      lastCommitted(): Promise<number | null> {
        return redis.hang ? new Promise<number | null>(() => undefined) : Promise.resolve(this.last);
      },
      outboxStats() {
        return Promise.resolve(this.outbox);
      },
    });
  }
  return redis;
}

function setup(count = 1) {
  const clock = { now: T0 };
  const redis = fakeRedis(count);
  const flush: { leader: boolean; lastCommittedTs: number; shardsLed?: number[] } = { leader: true, lastCommittedTs: 0 };
  const facts = new HealthFacts(redis, flush, { backlog: 2 }, losses, {
    flushIntervalMs: INTERVAL,
    operatorStatus: 'up',
    pingTimeoutMs: 50,
    now: () => clock.now,
  });
  return { clock, redis, flush, facts };
}

describe('HealthFacts', () => {
  it('is up after a fresh start with nothing committed yet, and reports the backlog and losses', async () => {
    const { facts } = setup();
    const r = await facts.report();
    assert.equal(r.status, 'up');
    assert.deepEqual(r.reasons, []);
    assert.deepEqual(r.redis, { answers: true, pingMs: 0.25, error: null });
    assert.deepEqual(r.outbox, { entries: 3, bytes: 300, oldestMs: T0 - 2000, oldestAgeMs: 2000 });
    assert.equal(r.batchesWaiting, 2);
    assert.equal(r.leader, true);
    assert.deepEqual(r.shards, { count: 1, led: [0] }, 'a flush side that reports no shards leads shard 0 when it is the leader');
    assert.deepEqual(r.lastCommit, { boundaryMs: null, ageMs: null, shard: 0 });
    assert.deepEqual(r.losses, {
      batches_dropped: 1, merge_errors: 2, oversized_packets: 3, outbox_dropped: 4, carbon_errors: 5, udp_kernel_drops: 6, redis_timeouts: 7,
      udp_socket_errors: 8,
    });
    assert.deepEqual(JSON.parse(JSON.stringify(r)), r, 'plain data, served as JSON as it is');
  });

  it('is down when no period was committed for three flush intervals, up again after a commit', async () => {
    const { clock, redis, facts } = setup();
    redis.last = T0 + INTERVAL;
    clock.now = T0 + 4 * INTERVAL;
    assert.equal((await facts.report()).status, 'up', 'three intervals since the last boundary: not yet');
    clock.now = T0 + 4 * INTERVAL + 1;
    const r = await facts.report();
    assert.equal(r.status, 'down');
    assert.equal(r.reasons.length, 1);
    assert.match(r.reasons[0]!, /^no period committed for 3 flush intervals \(30 s\); last committed period: \S+Z, 30 s ago$/);
    assert.equal(r.lastCommit.ageMs, 3 * INTERVAL + 1);
    redis.last = T0 + 4 * INTERVAL;
    assert.equal((await facts.report()).status, 'up');
  });

  it('counts a fresh start as the last commit when none is newer', async () => {
    const { clock, facts } = setup();
    clock.now = T0 + 3 * INTERVAL + 1;
    const r = await facts.report();
    assert.equal(r.status, 'down');
    assert.match(r.reasons[0]!, /last committed period: none yet$/);
  });

  it('is down when the outbox holds 90 % of its bound (outboxMaxBytes) or more, up below it', async () => {
    const redis = fakeRedis(); // 300 bytes in the outbox
    const opts = { flushIntervalMs: INTERVAL, operatorStatus: 'up' as const, pingTimeoutMs: 50, now: () => T0 };
    const at = await new HealthFacts(redis, null, null, losses, { ...opts, outboxMaxBytes: 300 }).report();
    assert.equal(at.status, 'down');
    assert.deepEqual(at.reasons, ['the outbox is at 100 % of its bound: 300 bytes of outboxMaxBytes 300; Carbon does not keep up, and at the bound each commit drops the oldest lines']);
    assert.equal(at.outboxMaxBytes, 300);
    const near = await new HealthFacts(redis, null, null, losses, { ...opts, outboxMaxBytes: 333 }).report();
    assert.deepEqual(near.reasons, ['the outbox is at 90 % of its bound: 300 bytes of outboxMaxBytes 333; Carbon does not keep up, and at the bound each commit drops the oldest lines']);
    const below = await new HealthFacts(redis, null, null, losses, { ...opts, outboxMaxBytes: 334 }).report();
    assert.equal(below.status, 'up');
    assert.equal((await new HealthFacts(redis, null, null, losses, opts).report()).outboxMaxBytes, null);
  });

  it('is down when redis does not answer, or answers the PING but hangs on a read', async () => {
    const { redis, facts } = setup();
    redis.down = 'redis connection is reconnecting';
    let r = await facts.report();
    assert.equal(r.status, 'down');
    assert.deepEqual(r.reasons, ['redis does not answer: redis connection is reconnecting']);
    assert.equal(r.outbox, null);
    assert.equal(r.redis.answers, false);
    redis.down = null;
    redis.hang = true;
    r = await facts.report();
    assert.deepEqual(r.reasons, ['redis does not answer: no reply within 50 ms']);
  });

  it('is down once the process is stopping, so a load balancer stops sending while it drains', async () => {
    const { facts } = setup();
    assert.equal((await facts.report()).status, 'up');
    facts.stopping = true;
    const r = await facts.report();
    assert.equal(r.status, 'down');
    assert.deepEqual(r.reasons, [STOPPING]);
  });

  it("lets the operator's down win, and up hand the decision back to the facts", async () => {
    const { redis, facts } = setup();
    facts.operatorStatus = 'down';
    let r = await facts.report();
    assert.equal(r.status, 'down');
    assert.deepEqual(r.reasons, [OPERATOR_DOWN]);
    redis.down = 'gone';
    assert.deepEqual((await facts.report()).reasons, [OPERATOR_DOWN, 'redis does not answer: gone']);
    facts.operatorStatus = 'up';
    r = await facts.report();
    assert.equal(r.status, 'down');
    assert.equal(r.operatorStatus, 'up');
  });

  it('is down while a udp reader has stopped after a socket error it could not clear', async () => {
    const stopped = { ...losses, udpReadersStopped: 1 };
    const facts = new HealthFacts(fakeRedis(), null, null, stopped, { flushIntervalMs: INTERVAL, operatorStatus: 'up', now: () => T0 });
    const r = await facts.report();
    assert.equal(r.status, 'down');
    assert.deepEqual(r.reasons, ['1 udp reader(s) stopped after a socket error they could not clear (see the log); restart tallyd']);
  });

  it('with shards, the shard whose last commit is oldest decides (one that never committed counts as oldest)', async () => {
    const { clock, redis, flush, facts } = setup(4);
    flush.shardsLed = [0, 1, 2, 3];
    for (const sh of redis.shards) sh.last = T0 + 2 * INTERVAL;
    redis.shards[2]!.last = T0 + INTERVAL;
    clock.now = T0 + 4 * INTERVAL;
    let r = await facts.report();
    assert.equal(r.status, 'up', 'three intervals since the oldest shard\'s boundary: not yet');
    assert.deepEqual(r.lastCommit, { boundaryMs: T0 + INTERVAL, ageMs: 3 * INTERVAL, shard: 2 });
    clock.now = T0 + 4 * INTERVAL + 1;
    r = await facts.report();
    assert.equal(r.status, 'down', 'shard 2 lags although every other shard committed within three intervals');
    assert.equal(r.reasons.length, 1);
    assert.match(r.reasons[0]!, /^no period committed on shard 2 of 4 \(the shard with the oldest commit\) for 3 flush intervals \(30 s\); last committed period: \S+Z, 30 s ago$/);
    redis.shards[2]!.last = T0 + 4 * INTERVAL;
    r = await facts.report();
    assert.equal(r.status, 'up');
    assert.deepEqual(r.lastCommit, { boundaryMs: T0 + 2 * INTERVAL, ageMs: 2 * INTERVAL + 1, shard: 0 });
    redis.shards[3]!.last = null;
    clock.now = T0 + 3 * INTERVAL + 1; // past three intervals since the process started, too
    r = await facts.report();
    assert.deepEqual(r.lastCommit, { boundaryMs: null, ageMs: null, shard: 3 });
    assert.match(r.reasons[0]!, /^no period committed on shard 3 of 4 .*; last committed period: none yet$/);
  });

  it('with shards but a flush side that reports no shard list (one Flusher, shard 0), shard 0 alone decides', async () => {
    const { clock, redis, facts } = setup(4);
    redis.shards[0]!.last = T0 + 2 * INTERVAL;
    clock.now = T0 + 5 * INTERVAL;
    let r = await facts.report();
    assert.equal(r.status, 'up', 'shards 1-3 never committed: nobody flushes them yet');
    assert.deepEqual(r.lastCommit, { boundaryMs: T0 + 2 * INTERVAL, ageMs: 3 * INTERVAL, shard: 0 });
    clock.now += 1;
    r = await facts.report();
    assert.match(r.reasons[0]!, /^no period committed on shard 0 of 4 /);
  });

  it('with shards, sums the outboxes (oldest entry of any) and weighs the sum against outboxMaxBytes', async () => {
    const redis = fakeRedis(3);
    redis.shards[1]!.outbox = { entries: 2, bytes: 50, oldestMs: T0 - 5000 };
    redis.shards[2]!.outbox = { entries: 1, bytes: 10, oldestMs: T0 - 1000 };
    const opts = { flushIntervalMs: INTERVAL, operatorStatus: 'up' as const, pingTimeoutMs: 50, now: () => T0 };
    const r = await new HealthFacts(redis, null, null, losses, { ...opts, outboxMaxBytes: 400 }).report();
    assert.deepEqual(r.outbox, { entries: 6, bytes: 360, oldestMs: T0 - 5000, oldestAgeMs: 5000 });
    assert.deepEqual(r.reasons, ['the outbox is at 90 % of its bound: 360 bytes of outboxMaxBytes 400; Carbon does not keep up, and at the bound each commit drops the oldest lines']);
    assert.deepEqual(r.shards, { count: 3, led: [] }, 'no flush side: leads nothing');
    assert.equal(r.leader, false);
  });

  it('reports the shards the flush side says it leads', async () => {
    const { flush, facts } = setup(8);
    flush.shardsLed = [5, 1, 6];
    let r = await facts.report();
    assert.deepEqual(r.shards, { count: 8, led: [1, 5, 6] });
    assert.equal(r.leader, true);
    flush.shardsLed = [];
    r = await facts.report();
    assert.deepEqual(r.shards, { count: 8, led: [] }, 'the list wins over the leader flag');
    assert.equal(r.leader, false);
  });

  it('is down when one shard hangs on a read', async () => {
    const { redis, facts } = setup(3);
    redis.shards[1]!.outboxStats = () => new Promise(() => undefined);
    const r = await facts.report();
    assert.deepEqual(r.reasons, ['redis does not answer: no reply within 50 ms']);
  });
});
