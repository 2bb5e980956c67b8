/**
 * values_clamped: every clamp to the finite doubles is counted once, wherever
 * it happens: a gauge delta sum in the batch, in the merge (mergeBatch-11),
 * when the period closes (closePeriod-8), and a timer stat when the period
 * is computed. Real Redis; the last test goes through a whole tallyd to a
 * Carbon listener.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { Batch } from '../../src/aggregate/batch.js';
import { encodeMerge } from '../../src/aggregate/merge-args.js';
import { computePeriod } from '../../src/flush/compute-period.js';
import type { Daemon } from '../../src/daemon.js';
import { loadConfig } from '../../src/config/load.js';
import { createLogger } from '../../src/observability/logger.js';
import { Store } from '../../src/store/store.js';
import { CarbonListener, sendUdp } from '../helpers/carbon.js';
import { cleanup, REDIS_URL, testPrefix } from '../helpers/redis.js';
import { startDaemon, testConfig } from '../helpers/tallyd.js';

const log = createLogger('silent');
const P = 2_000_000_000_000;
const HUGE = -1e308;

describe('clamps are counted', () => {
  const prefix = testPrefix('clamp');
  let store: Store;
  before(async () => {
    store = await Store.open({ url: REDIS_URL, keyPrefix: prefix }, log);
  });
  after(async () => {
    await store.quit();
    await cleanup(prefix);
  });

  test('in the batch: -1e308|g twice is one clamp', () => {
    const b = new Batch();
    b.gauge('g', HUGE, true);
    b.gauge('g', HUGE, true);
    b.gauge('g', HUGE, true); // already at -MAX_VALUE: clamped again
    assert.equal(b.clamped, 2);
    assert.equal(b.gaugeValue(0), -Number.MAX_VALUE);
  });

  test('in the merge: two batches of -1e308|g in one period, one clamp', async () => {
    const one = (id: string): Promise<unknown> => {
      const b = new Batch();
      b.gauge('g.m', HUGE, true);
      assert.equal(b.clamped, 0);
      return store.merge(id, P, 'm', P + 1000, encodeMerge(b));
    };
    assert.deepEqual(await one('m:1'), { status: 'merged' });
    assert.deepEqual(await one('m:2'), { status: 'merged', clamped: 1 });
    // A retry changes nothing and hands back the first attempt's count (for a caller whose first reply was lost).
    assert.deepEqual(await one('m:2'), { status: 'duplicate', clamped: 1 });
    assert.equal(await store.redis.hget(store.keys.period(P, 'gauges'), 'g.m'), 'd-1.7976931348623157e+308');
  });

  test('at close: a delta past the persistent value, one clamp', async () => {
    await store.redis.hset(store.keys.gauges, 'g.c', String(HUGE));
    const b = new Batch();
    b.gauge('g.c', HUGE, true);
    await store.merge('c:1', P, 'm', P + 1000, encodeMerge(b));
    await store.tryAcquireLease('tok', 60_000);
    // g.m (-MAX_VALUE as a delta onto nothing) does not clamp; g.c does.
    const closed = await store.closePeriod('tok', P, 60_000, 0, P + 5000); // (m, stamped by the real clock, is given up: no matter)
    assert.deepEqual({ status: closed.status, clamped: 'clamped' in closed ? closed.clamped : undefined }, { status: 'closed', clamped: 1 });
    assert.equal(await store.redis.hget(store.keys.gauges, 'g.c'), '-1.7976931348623157e+308');
  });

  test('at compute: a timer stat that overflows is clamped and counted', () => {
    const { config } = loadConfig({ file: null, env: {}, overrides: {} });
    const data = { counters: new Map(), gauges: new Map(), sets: new Map(), timers: new Map([['t', { values: [1e200], count: 1 }]]) };
    const c = computePeriod(data, config, 1, 0);
    const at = c.timers.statKeys.findIndex((k) => k.path.join('.') === 'sum_squares');
    assert.equal(c.timers.statValues[at], Number.MAX_VALUE);
    const infinite = c.timers.statKeys.filter((k, i) => k.path[0]?.startsWith('sum_squares') && c.timers.statValues[i] === Number.MAX_VALUE).length;
    assert.ok(infinite >= 1);
    assert.equal(c.clamped, infinite, 'sum_squares (and sum_squares_<pct>) clamped, nothing else');
    const fine = computePeriod({ ...data, timers: new Map([['t', { values: [1], count: 1 }]]) }, config, 1, 0);
    assert.equal(fine.clamped, undefined);
  });
});

describe('values_clamped through tallyd', () => {
  const prefix = testPrefix('clamp-e2e');
  const carbon = new CarbonListener();
  let daemon: Daemon | undefined;
  before(async () => {
    await carbon.start();
  });
  after(async () => {
    await daemon?.stop();
    await carbon.stop();
    await cleanup(prefix);
  });

  test('-1e308|g sent twice and 1e200|ms once: stats_counts.statsd.values_clamped adds up to one gauge clamp and the timer\'s', async () => {
    const raw = testConfig(prefix, carbon.port, { flushInterval: 500, batchInterval: 100 });
    const { config } = loadConfig({ file: null, env: {}, overrides: raw });
    const timerClamps = computePeriod({ counters: new Map(), gauges: new Map(), sets: new Map(), timers: new Map([['e2e.t', { values: [1e200], count: 1 }]]) }, config, 1, 0).clamped ?? 0;
    assert.ok(timerClamps >= 1);
    const expected = 1 + timerClamps;
    daemon = await startDaemon(raw);
    const port = daemon.ports.udp[0]!;
    await sendUdp(port, ['e2e.g:-1e308|g']);
    await sendUdp(port, ['e2e.g:-1e308|g']);
    await sendUdp(port, ['e2e.t:1e200|ms']);
    const name = 'stats_counts.statsd.values_clamped';
    await carbon.waitFor(() => carbon.sum(name) >= expected && carbon.series('stats.gauges.e2e.g').length > 0, 15_000, name);
    // Three more periods: nothing else is clamped (the gauge stays at -MAX_VALUE, the idle timer is empty).
    const seen = carbon.lines.length;
    await carbon.waitFor(() => new Set(carbon.lines.slice(seen).map((l) => l.ts)).size >= 3, 15_000, 'three more periods');
    assert.equal(carbon.sum(name), expected);
    assert.equal(carbon.series('stats.gauges.e2e.g').at(-1)?.value, '-1.7976931348623157e+308');
  });
});
