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
import { Keys } from '../../src/store/keys.js';
import { sleep } from '../helpers/carbon.js';
import { askConsole, askHealth } from '../helpers/console.js';
import { testPrefix } from '../helpers/redis.js';
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
      testConfig(prefix, null, { flushInterval: FLUSH_MS, leaseTtl: 3000, redis: { url: redis.url, keyPrefix: prefix, commandTimeout: COMMAND_TIMEOUT_MS, shards: 1 } }),
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
    const lease = new Keys(prefix).lease;
    try {
      // Another token takes the lease as soon as it is free; this process can then neither rotate nor commit.
      const deadline = Date.now() + 10_000;
      while ((await r.set(lease, 'intruder', 'PX', 60_000, 'NX')) !== 'OK') {
        assert.ok(Date.now() < deadline, 'took the lease');
        await r.del(lease);
      }
      const reply = await waitForReply(port, (x) => x.startsWith('health: down\n'), 'health: down', 4 * FLUSH_MS + 3000);
      assert.match(reply, /^health: down\nreason: no period committed for 3 flush intervals \(3 s\); last committed period: \S+Z, [34] s ago\n$/);
      assert.match(await askConsole(port, 'stats'), /\nflush\.leader: no\n/);
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
