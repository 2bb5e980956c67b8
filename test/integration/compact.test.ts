/**
 * The leader's compaction of open periods' parts on the real Redis
 * (Store.compactPeriod, compactParts-3.lua, Flusher.compactOpen):
 * - merges appending while compactions run: the period reads back exact;
 * - a compaction raced by another (another leader, around a handover) puts
 *   nothing; one after the close puts nothing;
 * - end to end: busy names, every batch tick, under a small
 *   maxNamesPerPeriod: the parts stay near one entry a name, so the merges'
 *   byte budget never refuses a part; every name exact in Carbon, nothing
 *   dropped (without compaction the same traffic fills the budget in a
 *   period and loses samples: checked by turning it off).
 */
import assert from 'node:assert/strict';
import dgram from 'node:dgram';
import { after, before, describe, test } from 'node:test';
import { Batch } from '../../src/aggregate/batch.js';
import { encodeMerge } from '../../src/aggregate/merge-args.js';
import type { Daemon } from '../../src/daemon.js';
import { compactParts } from '../../src/flush/compact-parts.js';
import { MIN_PARTS_BUDGET, shardBound, type Store } from '../../src/store/store.js';
import { CarbonListener, sleep } from '../helpers/carbon.js';
import { cleanup, REDIS_URL, testPrefix } from '../helpers/redis.js';
import { storeOnFreshPrefix } from '../helpers/store.js';
import { startDaemon, testConfig } from '../helpers/tallyd.js';

const I = 10_000;

function busyBatch(tick: number, names: number): Batch {
  const b = new Batch();
  for (let i = 0; i < names; i++) b.counter(`busy.c.${i}`, 1, i % 3 === 0 ? 0.5 : 1);
  for (let i = 0; i < 5; i++) b.timer(`busy.t.${i}`, tick + i / 10, 1);
  b.set('busy.s', `u${tick % 9}`);
  return b;
}

describe('compacting open periods on the real Redis', () => {
  const { store } = storeOnFreshPrefix('compact');
  const bound = shardBound(0, 1, 'statsd');
  let P = Math.ceil(Date.now() / I) * I + 50 * I;

  async function closeAndRead(s: Store, p: number): ReturnType<Store['readPeriod']> {
    await s.redis.del(s.keys.members);
    await s.tryAcquireLease('tok', 60_000);
    assert.equal((await s.closePeriod('tok', p, 60_000, 0, p + I)).status, 'closed');
    return s.readPeriod(p, bound);
  }

  test('merges appending while compactions run: the period reads back exact, and its parts hold each name about once', async () => {
    const s = store();
    const ticks = 60;
    let appended = 0;
    const outcomes: string[] = [];
    for (let t = 0; t < ticks; t++) {
      const args = encodeMerge(busyBatch(t, 300), 'statsd.');
      appended += (args[0] as Buffer).length;
      // A compaction in flight while the next merges append: what they append stays after the compacted parts.
      const [merged, compacted] = await Promise.all([s.merge(`c:${t}`, P, 'm', P, args, false, bound), t % 4 === 3 ? s.compactPeriod(P) : null]);
      assert.equal(merged.status, 'merged');
      if (compacted) outcomes.push(compacted.status);
    }
    // What the last merge appended after the last compaction's read, if anything; nothing left to save is kept.
    const last = await s.compactPeriod(P);
    assert.ok(last.status === 'compacted' || last.status === 'kept', last.status);
    const bytes = await s.redis.strlen(s.keys.period(P, 'parts'));
    assert.ok(bytes * 20 < appended, `${bytes} bytes of parts after compaction, ${appended} appended`);
    assert.ok(outcomes.every((o) => o === 'compacted'), outcomes.join());
    assert.equal(Number(await s.redis.get(s.keys.period(P, 'compactions'))), outcomes.length + (last.status === 'compacted' ? 1 : 0));

    const raw = await closeAndRead(s, P);
    assert.equal(raw.counters.size, 300);
    for (let i = 0; i < 300; i++) assert.equal(raw.counters.get(`busy.c.${i}`), i % 3 === 0 ? 2 * ticks : ticks, `busy.c.${i}`);
    for (let i = 0; i < 5; i++) {
      assert.equal(raw.timerCounts.get(`busy.t.${i}`), ticks);
      assert.deepEqual(raw.timers.get(`busy.t.${i}`), Array.from({ length: ticks }, (_, t) => t + i / 10), 'samples in merge order');
    }
    assert.equal(raw.sets.get('busy.s')?.size, 9);
    assert.equal(raw.dropped, 0);
    P += I;
  });

  test('a compaction raced by another puts nothing; after the close, none is put; one that saves nothing is not put', async () => {
    const s = store();
    for (let t = 0; t < 10; t++) await s.merge(`r:${t}`, P, 'm', P, encodeMerge(busyBatch(t, 50), 'statsd.'), false, bound);
    const stale = await s.readForCompaction(P);
    assert.ok(stale !== null);
    assert.equal((await s.compactPeriod(P)).status, 'compacted');
    await s.merge('r:10', P, 'm', P, encodeMerge(busyBatch(10, 50), 'statsd.'), false, bound);
    const before = await s.redis.getBuffer(s.keys.period(P, 'parts'));
    const c = compactParts(stale.parts);
    assert.ok(c !== null);
    assert.deepEqual(await s.putCompaction(P, stale.compactions, stale.parts.length, c.bytes), { status: 'raced' });
    assert.ok(before?.equals((await s.redis.getBuffer(s.keys.period(P, 'parts')))!), 'nothing changed');
    assert.equal((await s.compactPeriod(P)).status, 'compacted', 'the merge after the compaction');
    const once = await s.redis.getBuffer(s.keys.period(P, 'parts'));
    assert.deepEqual(await s.compactPeriod(P), { status: 'kept', bytesIn: once?.length }, 'compacted already: nothing to save');

    const fresh = await s.readForCompaction(P);
    const raw = await closeAndRead(s, P);
    assert.ok(fresh !== null);
    const c2 = compactParts(fresh.parts);
    assert.ok(c2 !== null);
    assert.deepEqual(await s.putCompaction(P, fresh.compactions, fresh.parts.length, c2.bytes), { status: 'closed' });
    assert.equal(raw.counters.get('busy.c.0'), 22);
    assert.equal(raw.counters.get('busy.c.1'), 11);
    P += I;
  });
});

describe('busy names under a small maxNamesPerPeriod, end to end', () => {
  const prefix = testPrefix('compact-e2e');
  const carbon = new CarbonListener();
  let daemon: Daemon | null = null;

  before(async () => {
    await carbon.start();
  });
  after(async () => {
    await daemon?.stop();
    await carbon.stop();
    await cleanup(prefix);
  });

  test('600 names every 20 ms tick for 2.5 periods: parts compacted below the budget, every name exact in Carbon, nothing dropped', async () => {
    const FLUSH = 3000;
    const NAMES = 600;
    daemon = await startDaemon(
      testConfig(prefix, carbon.port, {
        flushInterval: FLUSH,
        batchInterval: 20,
        maxNamesPerPeriod: 1000,
        redis: { url: REDIS_URL, keyPrefix: prefix, shards: 1 },
      }),
    );
    const d = daemon;
    const port = d.ports.udp[0]!;
    const s = d.store!;
    // One shard's budget is the floor (1 MiB): 600 names of ~16 bytes, ~27 bytes an entry, in each of the ~150
    // batch ticks of a 3 s period, would fill it (~2.4 MB) unless the leader compacts.
    const sock = dgram.createSocket('udp4');
    const datagrams: Buffer[] = [];
    for (let i = 0; i < NAMES; i += 20) datagrams.push(Buffer.from(Array.from({ length: 20 }, (_, j) => `busy.e2e.${i + j}:1|c`).join('\n')));
    let ticks = 0;
    let maxBytes = 0;
    let compacted = 0;
    const until = Date.now() + 2.5 * FLUSH;
    while (Date.now() < until) {
      for (const dg of datagrams) await new Promise<void>((r, j) => sock.send(dg, port, '127.0.0.1', (e) => (e ? j(e) : r())));
      ticks++;
      if (ticks % 5 === 0) {
        for (const { boundaryMs, bytes } of await s.openPartsSizes()) {
          maxBytes = Math.max(maxBytes, bytes);
          compacted = Math.max(compacted, Number(await s.redis.get(s.keys.period(boundaryMs, 'compactions'))));
        }
      }
      await sleep(20);
    }
    sock.close();
    const names = Array.from({ length: NAMES }, (_, i) => `stats_counts.busy.e2e.${i}`);
    await carbon.waitFor(() => names.every((n) => carbon.sum(n) === ticks), 15_000, `each name = ${ticks}`).catch(() => {
      const off = names.filter((n) => carbon.sum(n) !== ticks).slice(0, 5);
      throw new Error(`after ${ticks} ticks: ${off.map((n) => `${n} = ${carbon.sum(n)}`).join(', ')}; max parts ${maxBytes} bytes`);
    });
    assert.equal(d.self.namesDropped, 0);
    assert.equal(carbon.sum('stats_counts.statsd.names_dropped'), 0);
    assert.ok(compacted > 0, 'the leader compacted the open period');
    assert.ok(maxBytes < MIN_PARTS_BUDGET, `parts peaked at ${maxBytes} bytes, under the budget ${MIN_PARTS_BUDGET}`);
  });
});
