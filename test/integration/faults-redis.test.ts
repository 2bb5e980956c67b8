/**
 * Redis faults under steady traffic (issue 9, invariant 7): tallyd as a child
 * process on a redis-server of the test's own; Redis SIGSTOPped for 8 s, or
 * (with AOF, appendfsync always) killed -9 and restarted on its data 5 s
 * later. Every increment arrives, exactly once, under the period in which
 * tallyd received it: no hole, no spike.
 */
import assert from 'node:assert/strict';
import { afterEach, describe, test, type TestContext } from 'node:test';
import { CarbonListener, freeUdpPort, sleep } from '../helpers/carbon.js';
import { FaultFixture } from '../helpers/fault-fixture.js';
import { waitAllLed } from '../helpers/lease.js';
import { testPrefix } from '../helpers/redis.js';
import { RedisServer } from '../helpers/redis-server.js';
import { assertPeriods, diagnoseLines, periodOf, SteadySender, waitSettled } from '../helpers/steady-traffic.js';
import { spawnTallyd, testConfig, waitForOutput, type ChildTallyd } from '../helpers/tallyd.js';

const FLUSH_MS = 1000;
const NAME = 'faults.redis.hits';
const SERIES = `stats_counts.${NAME}`;

describe('faults: redis', () => {
  const f = new FaultFixture();
  afterEach(() => f.cleanup());

  async function setUp(aof: boolean): Promise<{ redis: RedisServer; carbon: CarbonListener; child: ChildTallyd; sender: SteadySender }> {
    const redis = await RedisServer.start({ aof });
    f.servers.push(redis);
    const carbon = new CarbonListener();
    f.carbons.push(carbon);
    await carbon.start();
    const udp = await freeUdpPort();
    const prefix = testPrefix(aof ? 'faults-kill9' : 'faults-pause');
    const child = spawnTallyd(
      testConfig(prefix, carbon.port, {
        servers: [{ server: 'udp', address: '127.0.0.1', port: udp }],
        flushInterval: FLUSH_MS,
        batchInterval: 50,
        leaseTtl: 3000,
        redis: { url: redis.url, keyPrefix: prefix },
        log: { level: 'info' },
      }),
    );
    f.children.push(child);
    await waitForOutput(child, 'tallyd is up');
    await waitAllLed(redis.url, prefix).catch((err: unknown) => {
      throw new Error(`${(err as Error).message}\n--- tallyd output ---\n${child.output().slice(-4000)}\n--- redis-server ---\n${redis.output().slice(-2000)}`);
    });
    const sender = new SteadySender({ port: udp, name: NAME, everyMs: 10, incrementsPerDatagram: 3 });
    f.senders.push(sender);
    return { redis, carbon, child, sender };
  }

  async function settleAndAssert(t: TestContext, what: string, carbon: CarbonListener, child: ChildTallyd, sender: SteadySender): Promise<void> {
    const last = sender.sent[sender.sent.length - 1];
    assert.ok(last, 'traffic was sent');
    // Settled: the whole total is in, and so are two periods after the traffic ended.
    const afterTs = periodOf(last.tMs, FLUSH_MS) / 1000 + 2;
    const settled = await waitSettled(() => carbon.series(SERIES), sender.total, afterTs, 20_000);
    t.diagnostic(`settled: ${settled}`);
    const report = (() => {
      try {
        return assertPeriods(what, sender.sent, carbon.series(SERIES), { intervalMs: FLUSH_MS, slackMs: 60 });
      } catch (err) {
        throw new Error(`${(err as Error).message}\n--- tallyd output (tail) ---\n${child.output().slice(-3000)}`);
      }
    })();
    diagnoseLines(t, report.text);
    // The one tallyd lived throughout: Redis being away is no reason to take it for dead.
    assert.deepEqual(child.output().split('\n').filter((l) => l.includes('gave up on processes')), [], 'the leader gave up on a live process');
  }

  test('redis SIGSTOPped for 8 s under traffic, then SIGCONTed: every period exact', { timeout: 45_000 }, async (t) => {
    const { redis, carbon, child, sender } = await setUp(false);
    await sender.start();
    await sleep(3000); // steady traffic before the fault
    redis.pause();
    const pausedAt = Date.now();
    await sleep(8000); // the fault's length
    redis.resume();
    t.diagnostic(`redis paused ${pausedAt} .. ${Date.now()}`);
    await sleep(4000); // steady traffic after the fault
    await sender.stop();
    await settleAndAssert(t, 'redis paused 8 s', carbon, child, sender);
  });

  test('redis with AOF killed -9 and restarted on the same data 5 s later: every period exact', { timeout: 45_000 }, async (t) => {
    const { redis, carbon, child, sender } = await setUp(true);
    await sender.start();
    await sleep(3000); // steady traffic before the fault
    await redis.kill9();
    const killedAt = Date.now();
    await sleep(5000); // the fault's length
    await redis.restart();
    t.diagnostic(`redis down ${killedAt} .. ${Date.now()}`);
    await sleep(4000); // steady traffic after the fault
    await sender.stop();
    await settleAndAssert(t, 'redis killed -9 and restarted', carbon, child, sender);
  });
});
