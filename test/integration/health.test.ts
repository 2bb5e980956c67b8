/**
 * The console's health from facts, against a redis-server of the test's own:
 * down with the reason while Redis is paused (SIGSTOP) or gone, and while no
 * period gets committed for three flush intervals (another token holds the
 * lease); up again once the fact is gone; the operator's `health down` wins.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { Redis } from 'ioredis';
import type { Daemon } from '../../src/daemon.js';
import { HealthFacts } from '../../src/observability/health.js';
import { createLogger } from '../../src/observability/logger.js';
import { SelfStats } from '../../src/observability/self-stats.js';
import { Store } from '../../src/store/store.js';
import { commitInShard, mergeIntoShards } from '../helpers/shards.js';
import { sleep } from '../helpers/carbon.js';
import { askConsole, askHealth } from '../helpers/console.js';
import { cleanup, REDIS_URL, testPrefix } from '../helpers/redis.js';
import { RedisServer } from '../helpers/redis-server.js';
import { startDaemon, testConfig } from '../helpers/tallyd.js';

const FLUSH_MS = 1000;
const UP = 'health: up\n';
const OPERATOR = 'reason: set down by the operator (health down)\n';
/** The test's redis.commandTimeout, which bounds health's PING too (the smaller of it and 1000 ms). */
const COMMAND_TIMEOUT_MS = 500;
const NO_PING = `reason: redis does not answer: no PING reply within ${COMMAND_TIMEOUT_MS} ms\n`;

async function waitForReply(port: number, pred: (reply: string) => boolean, what: string, timeoutMs = 10_000): Promise<string> {
  const deadline = Date.now() + timeoutMs;
  let reply = '';
  while (Date.now() < deadline) {
    reply = await askHealth(port);
    if (pred(reply)) return reply;
    await sleep(100);
  }
  throw new Error(`timed out waiting for ${what}; last reply ${JSON.stringify(reply)}`);
}

describe('console health from facts', () => {
  const prefix = testPrefix('health');
  let redis: RedisServer;
  let daemon: Daemon;
  let port = 0;

  before(async () => {
    redis = await RedisServer.start();
    daemon = await startDaemon(
      testConfig(prefix, null, { flushInterval: FLUSH_MS, leaseTtl: 3000, redis: { url: redis.url, keyPrefix: prefix, commandTimeout: COMMAND_TIMEOUT_MS } }),
    );
    port = daemon.ports.mgmt;
  });
  after(async () => {
    redis.resume();
    await daemon?.stop();
    await redis.stop();
  });

  test('up, with the exact statsd reply, once periods are being committed', async () => {
    await waitForReply(port, (r) => r === UP, 'health: up');
    const stats = await askConsole(port, 'stats');
    const deadline = Date.now() + 5000;
    let text = stats;
    while (!/\nflush\.last_committed_period: \d+\n/.test(text)) {
      assert.ok(Date.now() < deadline, `a committed period in stats: ${text}`);
      await sleep(100);
      text = await askConsole(port, 'stats');
    }
    assert.match(text, /\nflush\.leader: yes\n/);
    assert.match(text, /\nflush\.last_committed_age_s: [0-2]\n/);
    assert.match(text, /\nflush\.last_committed_by_this_process: \d+\n/);
  });

  test('down with the reason while redis is paused (SIGSTOP), up again after SIGCONT', async () => {
    await waitForReply(port, (r) => r === UP, 'health: up');
    redis.pause();
    try {
      const reply = await askHealth(port);
      assert.equal(reply, `health: down\n${NO_PING}`);
      const stats = await askConsole(port, 'stats');
      assert.ok(stats.includes(`\nhealth.status: down\nhealth.${NO_PING.slice(0, -1)}\nredis.answers: no\n`), stats);
      assert.match(stats, /\noutbox\.entries: unknown\n/);
    } finally {
      redis.resume();
    }
    await waitForReply(port, (r) => r === UP, 'health: up after SIGCONT');
  });

  test('down when no period was committed for three flush intervals (the lease held elsewhere), up after', async () => {
    await waitForReply(port, (r) => r === UP, 'health: up');
    const r = new Redis(redis.url);
    // Shard 0's lease (every shard has its own; until the flush side leads each, its one Flusher leads shard 0).
    const lease = daemon.store!.keys.lease;
    try {
      // Another token takes the lease as soon as it is free; this process can then neither rotate nor commit.
      const deadline = Date.now() + 10_000;
      while ((await r.set(lease, 'intruder', 'PX', 60_000, 'NX')) !== 'OK') {
        assert.ok(Date.now() < deadline, 'took the lease');
        await r.del(lease);
      }
      const reply = await waitForReply(port, (x) => x.startsWith('health: down\n'), 'health: down', 4 * FLUSH_MS + 3000);
      assert.match(reply, /^health: down\nreason: no period committed on shard 0 of 16 \(the shard with the oldest commit\) for 3 flush intervals \(3 s\); last committed period: \S+Z, [34] s ago\n$/);
      // This process no longer leads shard 0 (it may lead others, once the flush side leads every shard).
      const led = /\nflush\.shards_led_ids: (none|[\d,]+)\n/.exec(await askConsole(port, 'stats'));
      assert.ok(led, 'flush.shards_led_ids in stats');
      assert.ok(led[1] === 'none' || !led[1]!.split(',').includes('0'), `shards led: ${led[1]}`);
    } finally {
      await r.del(lease);
      r.disconnect();
    }
    await waitForReply(port, (x) => x === UP, 'health: up once this process leads and commits again');
  });

  test("the operator's health down wins over healthy facts and adds to failing ones; health up hands back", async () => {
    await waitForReply(port, (r) => r === UP, 'health: up');
    try {
      assert.equal(await askHealth(port, 'health down'), `health: down\n${OPERATOR}`);
      assert.equal(await askHealth(port), `health: down\n${OPERATOR}`);
      redis.pause();
      assert.equal(await askHealth(port), `health: down\n${OPERATOR}${NO_PING}`);
      assert.equal(await askHealth(port, 'health up'), `health: down\n${NO_PING}`);
    } finally {
      redis.resume();
      daemon.health!.operatorStatus = 'up';
    }
    await waitForReply(port, (r) => r === UP, 'health: up');
  });

  test('down while redis is gone (killed), up again once a restarted redis commits a period', async () => {
    await waitForReply(port, (r) => r === UP, 'health: up');
    await redis.kill9();
    const reply = await waitForReply(port, (r) => r.startsWith('health: down\n'), 'health: down');
    assert.match(reply, /^health: down\nreason: redis does not answer: redis connection is (connecting|reconnecting|close|end)\n$/);
    await redis.restart();
    await waitForReply(port, (r) => r === UP, 'health: up after the restart', 15_000);
  });
});

describe('health facts over shards (real scripts, 4 shards)', () => {
  const prefix = testPrefix('health-shards');
  let store: Store;
  before(async () => {
    store = await Store.open({ url: REDIS_URL, keyPrefix: prefix, shards: 4 }, createLogger('silent'));
  });
  after(async () => {
    await store.quit();
    await cleanup(prefix);
  });

  test('outboxes summed over the shards, the shard with the oldest commit decides, the shards led reported', async () => {
    const P = Math.floor(Date.now() / FLUSH_MS) * FLUSH_MS - 10 * FLUSH_MS;
    let now = P + FLUSH_MS;
    const flush = { leader: true, lastCommittedTs: 0, shardsLed: [3, 1] };
    const facts = new HealthFacts(store, flush, null, new SelfStats(), { flushIntervalMs: FLUSH_MS, operatorStatus: 'up', now: () => now });
    // Period P committed on every shard with an outbox chunk of a different size each; shard 2 also commits P+1.
    await mergeIntoShards(store, [0, 1, 2, 3].map((i) => ({ c: `h.c${i}`, v: 1 })), P);
    const chunks = [0, 1, 2, 3].map((i) => `h.x ${'9'.repeat(i + 1)} 1\n`);
    for (const st of store.shards) await commitInShard(st, P, [chunks[st.shard]!]);
    await commitInShard(store.shards[2]!, P + FLUSH_MS, ['h.y 1 1\n', 'h.z 2 1\n']);
    const bytes = [...chunks, 'h.y 1 1\n', 'h.z 2 1\n'].reduce((a, c) => a + Buffer.byteLength(c), 0);
    let r = await facts.report();
    assert.deepEqual(r.outbox && [r.outbox.entries, r.outbox.bytes], [6, bytes], JSON.stringify(r.outbox));
    assert.ok(r.outbox!.oldestMs !== null && r.outbox!.oldestMs <= Date.now());
    assert.deepEqual(r.shards, { count: 4, led: [1, 3] });
    assert.deepEqual(r.lastCommit, { boundaryMs: P, ageMs: FLUSH_MS, shard: 0 });
    assert.equal(r.status, 'up');
    // Shards 0, 1 and 3 commit P+1 too, shard 3 then P+2 and P+3: shard 0 (lowest index among the oldest) decides.
    for (const i of [0, 1, 3]) await commitInShard(store.shards[i]!, P + FLUSH_MS, []);
    for (const b of [P + 2 * FLUSH_MS, P + 3 * FLUSH_MS]) await commitInShard(store.shards[3]!, b, []);
    now = P + 4 * FLUSH_MS + 1;
    r = await facts.report();
    assert.deepEqual(r.lastCommit, { boundaryMs: P + FLUSH_MS, ageMs: 3 * FLUSH_MS + 1, shard: 0 });
    assert.equal(r.status, 'down');
    assert.match(r.reasons[0]!, /^no period committed on shard 0 of 4 \(the shard with the oldest commit\) for 3 flush intervals \(3 s\); /);
    for (const i of [0, 1, 2]) await commitInShard(store.shards[i]!, P + 2 * FLUSH_MS, []);
    r = await facts.report();
    assert.equal(r.status, 'up', JSON.stringify(r.reasons));
    assert.deepEqual(r.lastCommit.boundaryMs, P + 2 * FLUSH_MS);
  });
});
