/**
 * forgetIdleAfter against the real Redis, with the flusher's time driven by
 * a ManualClock: names statsd re-emits while idle (counters as 0, timers,
 * sets, a gauge's last value) stop being emitted and leave Redis once idle
 * past the bound; active ones stay; a forgotten name that comes back starts
 * fresh.
 */
import assert from 'node:assert/strict';
import { after, describe, test } from 'node:test';
import { Batch } from '../../src/aggregate/batch.js';
import { encodeMerge } from '../../src/aggregate/merge-args.js';
import { loadConfig } from '../../src/config/load.js';
import { Flusher } from '../../src/flush/flusher.js';
import { createLogger } from '../../src/observability/logger.js';
import { SelfStats } from '../../src/observability/self-stats.js';
import { Store } from '../../src/store/store.js';
import { ManualClock } from '../helpers/manual-clock.js';
import { graphiteOnly, outboxText } from '../helpers/outbox.js';
import { cleanup, REDIS_URL, testPrefix } from '../helpers/redis.js';
import { storeOnFreshPrefix } from '../helpers/store.js';

const log = createLogger('silent');
const FORGET_MS = 60_000;
const IDLE = ['idle.c', 'idle.t', 'idle.s', 'idle.g'];

describe('forgetIdleAfter', () => {
  const { prefix, store } = storeOnFreshPrefix('forget');

  test('idle names stop being emitted and leave Redis; active ones stay; a name that comes back starts fresh', async () => {
    const s = store();
    const { config } = loadConfig({
      file: null,
      env: {},
      overrides: { graphiteHost: '127.0.0.1', flushInterval: 600_000, forgetIdleAfter: FORGET_MS, redis: { url: REDIS_URL, keyPrefix: prefix } },
    });
    const clock = new ManualClock(1_700_000_000_000);
    const self = new SelfStats();
    // Closes are the test's: the flusher's own timers never fire (the clock moves only by jump()).
    const f = new Flusher(s, config, self, log, undefined, clock, graphiteOnly(config));
    assert.equal(await s.tryAcquireLease(f.token, 600_000), 2);
    await f.start();
    after(() => f.stop());
    const k = s.keys;
    /** Merges the batch into period ts (s), closes and processes it; the period's lines. */
    const period = async (ts: number, fill: (b: Batch) => void): Promise<string> => {
      const b = new Batch();
      fill(b);
      await s.merge(`f:${ts}`, ts * 1000, 'f', ts * 1000 + 1000, encodeMerge(b));
      await s.leave('f');
      assert.equal((await s.closePeriod(f.token, ts * 1000, 60_000, 0)).status, 'closed');
      await f.kickProcessing();
      return (await outboxText(s)).split('\n').filter((l) => l.endsWith(` ${ts}`)).join('\n');
    };
    const names = async (): Promise<Record<string, string[]>> => ({
      counters: (await s.redis.hkeys(k.known('counters'))).sort(),
      timers: await s.redis.hkeys(k.known('timers')),
      sets: await s.redis.hkeys(k.known('sets')),
      gauges: (await s.redis.hkeys(k.gauges)).sort(),
      gaugeSeen: (await s.redis.hkeys(k.gaugeSeen)).sort(),
    });

    const t0 = clock.now();
    const first = await period(1000, (b) => {
      b.counter('idle.c', 1, 1);
      b.counter('active.c', 1, 1);
      b.timer('idle.t', 5, 1);
      b.set('idle.s', 'x');
      b.gauge('idle.g', 5, false);
      b.gauge('active.g', 1, false);
    });
    assert.match(first, /^stats_counts\.idle\.c 1 1000$/m);
    assert.equal(await s.redis.hget(k.known('counters'), 'idle.c'), String(t0), 'last seen: when the leader processed the period');
    assert.equal(await s.redis.hget(k.gaugeSeen, 'idle.g'), String(t0));

    clock.jump(FORGET_MS * 0.6);
    const second = await period(2000, (b) => {
      b.counter('active.c', 1, 1);
      b.gauge('active.g', 2, false);
    });
    // Idle for less than forgetIdleAfter: re-emitted, as statsd does.
    assert.match(second, /^stats_counts\.idle\.c 0 2000$/m);
    assert.match(second, /^stats\.gauges\.idle\.g 5 2000$/m);
    assert.match(second, /^stats\.sets\.idle\.s\.count 0 2000$/m);
    assert.match(second, /^stats\.timers\.idle\.t\.count 0 2000$/m);
    assert.equal(await s.redis.hget(k.known('counters'), 'active.c'), String(clock.now()), 'a stale last-seen time is refreshed');
    assert.equal(self.namesForgotten, 0);

    clock.jump(FORGET_MS * 0.6); // idle.* last seen 1.2 x forgetIdleAfter ago; active.* 0.6 x
    const version = await s.knownVersion();
    await period(3000, (b) => b.counter('active.c', 1, 1));
    assert.equal(self.namesForgotten, IDLE.length);
    assert.deepEqual(await names(), { counters: ['active.c'], timers: [], sets: [], gauges: ['active.g'], gaugeSeen: ['active.g'] });
    assert.notEqual(await s.knownVersion(), version, 'known_version bumped');

    const fourth = await period(4000, (b) => b.counter('active.c', 1, 1));
    for (const name of IDLE) assert.doesNotMatch(fourth, new RegExp(name.replace('.', '\\.')), `${name} is no longer emitted`);
    assert.match(fourth, /^stats_counts\.active\.c 1 4000$/m);
    assert.match(fourth, /^stats\.gauges\.active\.g 2 4000$/m);

    const fifth = await period(5000, (b) => {
      b.counter('idle.c', 3, 1);
      b.gauge('idle.g', 2, true); // a delta onto nothing: the old 5 is gone
    });
    assert.match(fifth, /^stats_counts\.idle\.c 3 5000$/m);
    assert.match(fifth, /^stats\.gauges\.idle\.g 2 5000$/m);
    assert.equal(await s.redis.hget(k.known('counters'), 'idle.c'), String(clock.now()));
    assert.equal(self.namesForgotten, IDLE.length, 'nothing else forgotten');
  });

  test('forgetIdleAfter 0 never forgets', async () => {
    const { config } = loadConfig({
      file: null,
      env: {},
      overrides: { graphiteHost: '127.0.0.1', flushInterval: 600_000, forgetIdleAfter: 0, redis: { url: REDIS_URL, keyPrefix: `${prefix}z:` } },
    });
    const z = await Store.open({ url: REDIS_URL, keyPrefix: `${prefix}z:` }, log);
    after(() => z.quit());
    const clock = new ManualClock(1_700_000_000_000);
    const self = new SelfStats();
    const f = new Flusher(z, config, self, log, undefined, clock, graphiteOnly(config));
    assert.equal(await z.tryAcquireLease(f.token, 600_000), 2);
    await f.start();
    after(() => f.stop());
    for (const ts of [1000, 2000, 3000]) {
      const b = new Batch();
      if (ts === 1000) b.counter('old.c', 1, 1);
      b.counter('other.c', 1, 1);
      await z.merge(`z:${ts}`, ts * 1000, 'z', ts * 1000 + 1000, encodeMerge(b));
      await z.leave('z');
      assert.equal((await z.closePeriod(f.token, ts * 1000, 60_000, 0)).status, 'closed');
      await f.kickProcessing();
      clock.jump(365 * 86_400_000);
    }
    assert.equal(self.namesForgotten, 0);
    assert.match(await outboxText(z), /^stats_counts\.old\.c 0 3000$/m);
  });
  test('a gauge with a delta in a period still open is not forgotten: the delta lands on its value, not on 0', async () => {
    const p = testPrefix('forget-race');
    const st = await Store.open({ url: REDIS_URL, keyPrefix: p }, log);
    try {
      const P1 = 1_000_000;
      const P2 = 1_001_000;
      assert.equal(await st.tryAcquireLease('tok', 60_000), 2);
      const set = new Batch();
      set.gauge('race.g', 100, false);
      await st.merge('G:1', P1, 'm', P2, encodeMerge(set));
      await st.leave('m');
      assert.equal((await st.closePeriod('tok', P1, 3000, 0)).status, 'closed');
      await st.rememberSeen({ gauges: ['race.g'] }, Date.now() - 10 * 3_600_000); // last seen 10 h ago
      const delta = new Batch();
      delta.gauge('race.g', 1, true); // +1 received now, in the open period P2
      await st.merge('G:2', P2, 'm', P2 + 1000, encodeMerge(delta));
      const res = await st.forgetIdle('tok', Date.now() - 3_600_000, { counters: [], timers: [], sets: [], gauges: ['race.g'] });
      assert.deepEqual({ forgotten: res?.forgotten, removed: res?.removed }, { forgotten: 0, removed: 0 });
      await st.leave('m');
      assert.equal((await st.closePeriod('tok', P2, 3000, 0)).status, 'closed');
      assert.equal(await st.redis.hget(st.keys.gauges, 'race.g'), '101');
      // With no op pending, the same idle gauge is forgotten.
      const again = await st.forgetIdle('tok', Date.now() - 3_600_000, { counters: [], timers: [], sets: [], gauges: ['race.g'] });
      assert.equal(again?.forgotten, 1);
      assert.equal(await st.redis.hget(st.keys.gauges, 'race.g'), null);
    } finally {
      await st.quit();
      await cleanup(p);
    }
  });
});
