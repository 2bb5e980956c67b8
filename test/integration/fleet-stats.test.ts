/**
 * The fleet's self-metrics with two shards, a Flusher each, an injected clock
 * and real Redis (flush/fleet-stats.ts): shard 0's leader does not process a
 * period before shard 1 committed it, then emits numStats (both shards'),
 * processing_time (summed), calculationtime, graphiteStats, timestamp_lag
 * and statsd's own three counters (summed over the shards, wherever they
 * were merged) once; shard 1 emits none of them.
 */
import assert from 'node:assert/strict';
import { afterEach, describe, test } from 'node:test';
import { Batch } from '../../src/aggregate/batch.js';
import { encodeMerge } from '../../src/aggregate/merge-args.js';
import { loadConfig } from '../../src/config/load.js';
import { internalCounterNames } from '../../src/flush/build-period.js';
import { Flusher } from '../../src/flush/flusher.js';
import { createLogger } from '../../src/observability/logger.js';
import { SelfStats } from '../../src/observability/self-stats.js';
import { Store } from '../../src/store/store.js';
import { run, until } from '../helpers/drive-clock.js';
import { ManualClock } from '../helpers/manual-clock.js';
import { graphiteOnly, outboxText } from '../helpers/outbox.js';
import { cleanup, REDIS_URL, testPrefix } from '../helpers/redis.js';

const log = createLogger('silent');
const I = 10_000;
const SELF_METRICS = /^(statsd\.numStats|stats\.statsd\.processing_time|stats\.statsd\.graphiteStats\.\w+|stats\.gauges\.statsd\.timestamp_lag) /;

/** A name that lands on shard s. */
function nameOn(store: Store, s: number, stem: string): string {
  for (let i = 0; ; i++) if (store.shardOf(`${stem}${i}`) === s) return `${stem}${i}`;
}

describe('fleet self-metrics (two shards, injected clock, real redis)', () => {
  let prefix = '';
  let store: Store | undefined;
  const flushers: Flusher[] = [];
  afterEach(async () => {
    for (const f of flushers.splice(0)) await f.stop();
    await store?.quit();
    await cleanup(prefix);
  });

  test("shard 0 waits for shard 1's commit, then emits the self-metrics once, summed; shard 1 emits none", async () => {
    prefix = testPrefix('fleet');
    const { config } = loadConfig({
      file: null,
      env: {},
      overrides: { graphiteHost: '127.0.0.1', flushInterval: I, leaseTtl: 3000, redis: { url: REDIS_URL, keyPrefix: prefix, shards: 2 } },
    });
    const s = await Store.open(config.redis, log);
    store = s;
    const [s0, s1] = s.shards as [Store, Store];
    const P = (Math.floor(Date.now() / I) + 1) * I;
    const names = [[nameOn(s, 0, 'fleet.a'), nameOn(s, 0, 'fleet.b')], [nameOn(s, 1, 'fleet.c'), nameOn(s, 1, 'fleet.d'), nameOn(s, 1, 'fleet.e')]];
    let seq = 0;
    for (const [i, st] of [s0, s1].entries()) {
      // A period committed before (timestamp_lag from the next one on, as statsd from its second flush), P merged.
      await st.redis.set(st.keys.closed, String(P - I));
      await st.redis.set(st.keys.lastCommit, String(P - I));
      const b = new Batch();
      for (const n of names[i]!) b.counter(n, 2, 1);
      // statsd's own counters as processes merge them: into either shard (before and after ingest splits by name).
      b.counter('statsd.metrics_received', 5 + i, 1);
      if (i === 1) b.counter('statsd.bad_lines_seen', 3, 1);
      const id = `f:${++seq}`;
      assert.deepEqual(await st.merge(id, P, 'm', P + I, encodeMerge(b)), { status: 'merged' });
    }
    const clock = new ManualClock(P + 100);
    const flusherOf = (st: Store): Flusher => {
      const f = new Flusher(st, config, new SelfStats(), log, undefined, clock, graphiteOnly(config), { token: 'one-process' });
      flushers.push(f);
      return f;
    };
    const f0 = flusherOf(s0);
    await f0.start();
    clock.advance(0);
    await until('shard 0 closed P', async () => (await s0.closeState()).closedMs === P);
    await run(clock, 1000);
    assert.equal(f0.periodsCommitted, 0, 'shard 0 holds P while shard 1 has not committed it');
    assert.deepEqual(await s0.pendingPeriods(), [P]);

    const f1 = flusherOf(s1);
    await f1.start();
    clock.advance(0);
    await until('shard 1 committed P', async () => f1.lastCommittedTs === P / 1000);
    await run(clock, 500);
    await until('shard 0 committed P', async () => f0.lastCommittedTs === P / 1000);

    const at = (text: string): string[] => text.split('\n').filter((l) => l.endsWith(` ${P / 1000}`));
    const lines0 = at(await outboxText(s0));
    const lines1 = at(await outboxText(s1));
    assert.deepEqual(lines1.filter((l) => SELF_METRICS.test(l)), [], `shard 1 emits no self-metrics:\n${lines1.join('\n')}`);
    const self0 = lines0.filter((l) => SELF_METRICS.test(l)).map((l) => l.split(' ')[0]);
    assert.deepEqual(self0.sort(), [
      'stats.gauges.statsd.timestamp_lag', 'stats.statsd.graphiteStats.calculationtime', 'stats.statsd.graphiteStats.flush_length',
      'stats.statsd.graphiteStats.flush_time', 'stats.statsd.graphiteStats.last_exception', 'stats.statsd.graphiteStats.last_flush',
      'stats.statsd.processing_time', 'statsd.numStats',
    ]);
    // statsd's own counters: from shard 0 alone, summed over both shards (an idle one 0).
    const all = [...lines0, ...lines1];
    const want: Record<string, number> = { 'statsd.bad_lines_seen': 3, 'statsd.packets_received': 0, 'statsd.metrics_received': 11 };
    for (const n of internalCounterNames('statsd')) {
      assert.deepEqual(all.filter((l) => l.startsWith(`stats_counts.${n} `)), [`stats_counts.${n} ${want[n]} ${P / 1000}`], n);
      assert.equal(lines1.filter((l) => l.includes(`.${n} `)).length, 0, `${n} not from shard 1`);
    }
    // numStats: every stat both shards emitted (counters by their count line, and the lag gauge).
    const stats = all.filter((l) => l.startsWith('stats_counts.') || l.startsWith('stats.gauges.')).length;
    assert.equal(stats, names.flat().length + 3 + 1);
    assert.ok(lines0.includes(`statsd.numStats ${stats} ${P / 1000}`), lines0.join('\n'));
    // Each shard's record of P, which shard 0 added up.
    const r0 = await s0.fleetRecord(P);
    const r1 = await s1.fleetRecord(P);
    assert.ok(r0 && r1);
    assert.equal(r0.numStats + r1.numStats, stats);
    assert.deepEqual(r1.counters, [3, 0, 6], "shard 1's own counters recorded");
    const proc = Number(lines0.find((l) => l.startsWith('stats.statsd.processing_time '))?.split(' ')[1]);
    assert.equal(proc, r0.processingMs + r1.processingMs);
  });
});
