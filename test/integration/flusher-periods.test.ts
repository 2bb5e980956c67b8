/**
 * The leader's period loop with an injected clock (test/helpers/manual-clock):
 * time moves only when the test says so, Redis is real. A period closes only
 * after its boundary and once every live member has merged its share; a
 * member that stopped reporting is given up after its ttl, but not while
 * Redis itself had just been unreachable (paused: a redis-server of the
 * test's own, SIGSTOPped); a new leader closes each period a
 * dead one left, separately, each with its own samples.
 */
import assert from 'node:assert/strict';
import { after, afterEach, before, describe, test } from 'node:test';
import { Batch } from '../../src/aggregate/batch.js';
import { encodeMerge } from '../../src/aggregate/merge-args.js';
import { loadConfig } from '../../src/config/load.js';
import type { Config } from '../../src/config/types.js';
import { Flusher } from '../../src/flush/flusher.js';
import { createLogger } from '../../src/observability/logger.js';
import { SelfStats } from '../../src/observability/self-stats.js';
import { Store } from '../../src/store/store.js';
import { run, until } from '../helpers/drive-clock.js';
import { ManualClock } from '../helpers/manual-clock.js';
import { graphiteOnly, outboxText as readOutbox } from '../helpers/outbox.js';
import { cleanup, REDIS_URL, testPrefix } from '../helpers/redis.js';
import { RedisServer } from '../helpers/redis-server.js';

const log = createLogger('silent');
const I = 10_000;
const TTL = 3000;

function counterBatch(name: string, n: number): Batch {
  const b = new Batch();
  b.counter(name, n, 1);
  return b;
}

describe('flusher periods (injected clock, real redis)', () => {
  let prefix = '';
  let store: Store;
  let config: Config;
  const flushers: Flusher[] = [];
  const servers: RedisServer[] = [];
  let seq = 0;

  before(() => {
    prefix = testPrefix('flusher');
  });
  afterEach(async () => {
    for (const f of flushers.splice(0)) await f.stop();
    await store?.quit();
    for (const r of servers.splice(0)) await r.stop();
    await cleanup(prefix);
  });
  after(() => cleanup(prefix));

  async function setup(extra: Record<string, unknown> = {}, url = REDIS_URL): Promise<void> {
    prefix = testPrefix('flusher');
    config = loadConfig({
      file: null,
      env: {},
      overrides: { graphiteHost: '127.0.0.1', flushInterval: I, leaseTtl: TTL, redis: { url, keyPrefix: prefix, shards: 1 }, ...extra },
    }).config;
    store = await Store.open(config.redis, log);
  }

  async function merge(boundaryMs: number, member: string, watermarkMs: number, name: string, n: number): Promise<void> {
    const id = `t:${++seq}`;
    assert.deepEqual(await store.merge(id, boundaryMs, member, watermarkMs, encodeMerge(counterBatch(name, n))), { status: 'merged' });
  }

  async function outboxText(): Promise<string> {
    return readOutbox(store);
  }

  async function leader(clock: ManualClock): Promise<Flusher> {
    const f = new Flusher(store, config, new SelfStats(), log, undefined, clock, graphiteOnly(config));
    flushers.push(f);
    await f.start();
    assert.ok(f.isLeader);
    clock.advance(0); // the first close attempt, due at once
    return f;
  }

  test('a period closes after its boundary, once the live member that still holds it has moved past it', async () => {
    await setup();
    // The clock sits early in period P (samples received now belong to P).
    const P = (Math.floor(Date.now() / I) + 1) * I;
    const clock = new ManualClock(P - I + 10);
    await merge(P, 'm', P, 'a.c', 3); // m has merged, but still receives in P
    const f = await leader(clock);
    await until('the empty period before P closed at start', async () => (await store.closeState()).closedMs === P - I);
    clock.advance(I - 100); // not yet at P's boundary
    await new Promise((r) => setTimeout(r, 50)); // a chance for a wrong early close to show: an absence has no condition
    assert.equal((await store.closeState()).closedMs, P - I, 'P is not closed before its boundary');
    clock.advance(200); // past the boundary: m's watermark is still P
    await new Promise((r) => setTimeout(r, 50)); // as above
    assert.equal((await store.closeState()).closedMs, P - I, 'held while m may still hold samples of P');
    await merge(P, 'm', P + I, 'a.c', 4); // m sealed P at its boundary and merged the rest
    clock.advance(200);
    await until('P committed', async () => f.lastCommittedTs === P / 1000).catch(async (e: unknown) => {
      console.log(await store.closeState(), clock.pending, f.periodsCommitted, f.lastCommittedTs, P, await store.redis.hgetall(store.keys.members));
      throw e;
    });
    assert.match(await outboxText(), new RegExp(`^stats_counts\\.a\\.c 7 ${P / 1000}$`, 'm'));
  });

  test("statsd.timestamp_lag appears from the prefix's second committed period, as from statsd's second flush", async () => {
    await setup();
    const P = (Math.floor(Date.now() / I) + 1) * I;
    const clock = new ManualClock(P - I + 10);
    const f = await leader(clock);
    await until('the first period (P - I) committed', async () => f.lastCommittedTs === (P - I) / 1000);
    await run(clock, I + 500);
    await until('P committed', async () => f.lastCommittedTs === P / 1000).catch(async (e: unknown) => {
      console.log(await store.closeState(), clock.now(), P, f.lastCommittedTs, f.periodsCommitted);
      throw e;
    });
    const text = await outboxText();
    const at = (ts: number): string[] => text.split('\n').filter((l) => l.endsWith(` ${ts}`));
    const first = at((P - I) / 1000);
    const second = at(P / 1000);
    const numStats = (lines: string[]): number => Number(lines.find((l) => l.startsWith('statsd.numStats '))?.split(' ')[1]);
    assert.equal(first.filter((l) => l.includes('timestamp_lag')).length, 0, first.join('\n'));
    assert.equal(second.filter((l) => l.startsWith('stats.gauges.statsd.timestamp_lag ')).length, 1, second.join('\n'));
    assert.equal(numStats(second), numStats(first) + 1);
    // A new leader on the same prefix (a restart) goes on emitting it: the prefix has committed before.
    await f.stop();
    flushers.splice(0);
    await run(clock, I);
    const g = await leader(clock);
    await until('P + I committed by the next leader', async () => g.lastCommittedTs === (P + I) / 1000);
    const third = (await outboxText()).split('\n').filter((l) => l.endsWith(` ${(P + I) / 1000}`));
    assert.equal(third.filter((l) => l.startsWith('stats.gauges.statsd.timestamp_lag ')).length, 1, third.join('\n'));
  });

  test('a member that stops reporting is given up after its ttl, not before', async () => {
    await setup();
    const P = (Math.floor(Date.now() / I) + 1) * I;
    const clock = new ManualClock(P + 100);
    await merge(P, 'gone', P, 'b.c', 5); // then "killed -9": its watermark stays at P
    await leader(clock);
    await run(clock, TTL - 500);
    assert.notEqual((await store.closeState()).closedMs, P, 'P waits for the member within its ttl');
    await run(clock, 1000);
    await until('P closed once the member is dead', async () => (await store.closeState()).closedMs === P);
    assert.equal(await store.redis.hexists(store.keys.members, 'gone'), 0);
    assert.match(await outboxText(), new RegExp(`^stats_counts\\.b\\.c 5 ${P / 1000}$`, 'm'));
  });

  test("a member whose reports stopped with Redis is not given up: Redis paused just under a ttl, the leader's own lease check held too", async () => {
    const redis = await RedisServer.start();
    servers.push(redis);
    await setup({}, redis.url);
    const P = (Math.floor(Date.now() / I) + 1) * I;
    const clock = new ManualClock(P + 100); // P is over
    // m's reports, at the leader's clock (a real member reports every third of the ttl, or with every merge).
    const report = (atMs: number, watermarkMs: number): Promise<number> => store.redis.hset(store.keys.members, 'm', `${atMs} ${watermarkMs}`);
    await merge(P, 'm', P, 'held.c', 3); // m merged part of P and still holds the rest
    await report(P + 100, P);
    await leader(clock); // its lease checks are answered at P + 100, P + 1100, ...; P waits for m
    await run(clock, 900);
    await report(P + 1000, P); // m's last report before Redis stops answering
    await run(clock, 100); // the leader's lease check at P + 1100 answered, 100 ms after m's last report
    assert.notEqual((await store.closeState()).closedMs, P, 'P waits for m');
    redis.pause();
    // Redis answers nothing for 2.95 s of the leader's time: its next lease check (P + 2100) and its close poll wait.
    // So the gap between its lease checks' answers stays within the ttl, while m's last report ages past it.
    await run(clock, 2950);
    redis.resume();
    await new Promise((r) => setTimeout(r, 300)); // the held commands answered; the close goes on at P + 4050
    assert.notEqual((await store.closeState()).closedMs, P, 'm was not given up: its reports stopped with Redis, as the leader\'s did');
    assert.equal(await store.redis.hexists(store.keys.members, 'm'), 1);
    // m's reports land again: the rest of P, merged into P (not late).
    await merge(P, 'm', P + I, 'held.c', 4);
    await report(P + 4100, P + I);
    await run(clock, 200);
    await until('P closed once m moved past it', async () => (await store.closeState()).closedMs === P);
    await until('P committed', async () => (await outboxText()).includes(`stats_counts.held.c 7 ${P / 1000}`));
  });

  test("after a leader died, the next closes each period it left separately, each with its own samples", async () => {
    await setup();
    const P = (Math.floor(Date.now() / I) + 1) * I;
    // Three periods of steady traffic merged by a member that is still alive; nobody closed them (the leader died).
    await merge(P, 'alive', P + I, 'c.c', 10);
    await merge(P + I, 'alive', P + 2 * I, 'c.c', 20);
    await merge(P + 2 * I, 'alive', P + 3 * I, 'c.c', 30);
    await store.redis.set(store.keys.closed, String(P - I));
    const clock = new ManualClock(P + 3 * I + 500);
    const f = await leader(clock);
    await until('three periods committed', async () => f.periodsCommitted >= 3);
    const text = await outboxText();
    for (const [i, v] of [10, 20, 30].entries()) {
      assert.match(text, new RegExp(`^stats_counts\\.c\\.c ${v} ${(P + i * I) / 1000}$`, 'm'), `period ${i} on its own`);
    }
  });

  test('a period merged under another flushInterval is closed in its turn, never stepped over', async () => {
    await setup();
    const P = (Math.floor(Date.now() / I) + 1) * I;
    await store.redis.set(store.keys.closed, String(P - 2 * I));
    // A process still on a 3 s interval merged into a period off this leader's 10 s grid.
    await merge(P - 2 * I + 3000, 'old', P + I, 'grid.c', 3);
    await merge(P, 'old', P + I, 'grid.c', 4);
    await store.leave('old');
    const clock = new ManualClock(P + 500);
    const f = await leader(clock);
    await until('both committed', async () => f.lastCommittedTs === P / 1000);
    const text = await outboxText();
    assert.match(text, new RegExp(`^stats_counts\\.grid\\.c 3 ${(P - 2 * I + 3000) / 1000}$`, 'm'));
    assert.match(text, new RegExp(`^stats_counts\\.grid\\.c 4 ${P / 1000}$`, 'm'));
  });

  test('deleteGauges: periods closed and committed strictly in turn, so a commit never undoes a later period', async () => {
    await setup({ deleteGauges: true });
    const P = (Math.floor(Date.now() / I) + 1) * I;
    await store.redis.set(store.keys.closed, String(P - I));
    const g = async (boundaryMs: number, value: number, delta: boolean): Promise<void> => {
      const b = new Batch();
      b.gauge('dg.g', value, delta);
      const id = `g:${++seq}`;
      await store.merge(id, boundaryMs, 'src', P + 3 * I, encodeMerge(b));
    };
    await g(P, 5, false); // set in P, idle in P + I (deleted after it, as statsd does), +1 in P + 2I
    await g(P + 2 * I, 1, true);
    await store.leave('src');
    const clock = new ManualClock(P + 2 * I + 500); // a leader that takes over late: three periods due at once
    const f = await leader(clock);
    await until('three periods committed', async () => f.lastCommittedTs === (P + 2 * I) / 1000);
    const text = await outboxText();
    assert.match(text, new RegExp(`^stats\\.gauges\\.dg\\.g 5 ${P / 1000}$`, 'm'));
    assert.match(text, new RegExp(`^stats\\.gauges\\.dg\\.g 1 ${(P + 2 * I) / 1000}$`, 'm'), 'statsd: a delta after the deletion starts from 0');
  });
});
