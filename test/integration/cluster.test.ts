/**
 * tallyd on a real Redis Cluster (issue 11): 3 masters and 3 replicas of the
 * test's own (test/helpers/redis-cluster.ts), started once and shared by the
 * file's tests, each with its own key prefix. tallyd runs with the default
 * of 16 shards: each shard's keys carry its own hash tag, in the i-th of 16
 * equal slot bands, so the shards spread over the three masters (5, 5, 6),
 * and each shard has its own lease, spread over the tallyd processes. Two
 * tallyd processes on one prefix, each with its own UDP port and counter
 * under steady traffic; Carbon must get every period exact (per name, per
 * period, no period published with two values): on a healthy cluster (the
 * shards led by both processes and held by all three masters, read from
 * Redis), with the master of a shard killed -9 (its replica promoted;
 * merges confirmed by WAIT 1 survive it), and with one shard's slot
 * migrated to another master under traffic (ASK/TRYAGAIN/MOVED while its
 * keys move: batches wait and retry, nothing lost or doubled).
 */
import assert from 'node:assert/strict';
import { existsSync, writeFileSync } from 'node:fs';
import { after, afterEach, before, describe, test, type TestContext } from 'node:test';
import { Cluster } from 'ioredis';
import { Keys } from '../../src/store/keys.js';
import { ShardMap } from '../../src/store/shards.js';
import { CarbonListener, freeUdpPort, sleep } from '../helpers/carbon.js';
import { FaultFixture } from '../helpers/fault-fixture.js';
import { leaseHolders, shardsByHolder, tokenOf, waitHolders } from '../helpers/lease.js';
import { RedisCluster, REDIS_CLI_BIN, type ClusterNode } from '../helpers/redis-cluster.js';
import { REDIS_SERVER_BIN } from '../helpers/redis-server.js';
import { recordedShards, testPrefix } from '../helpers/redis.js';
import { assertPeriods, checkPeriods, diagnoseLines, periodOf, SteadySender, waitSettled, waitUntil } from '../helpers/steady-traffic.js';
import { checkTallyd, spawnTallyd, testConfig, waitForOutput, type ChildTallyd } from '../helpers/tallyd.js';

const FLUSH_MS = 1000;
const SHARDS = 16;
const MAP = new ShardMap(SHARDS);
const HAVE_BINARIES = existsSync(REDIS_SERVER_BIN) && existsSync(REDIS_CLI_BIN);
const skip = !HAVE_BINARIES && process.env.CI !== 'true' ? `needs ${REDIS_SERVER_BIN} and ${REDIS_CLI_BIN} (apt-get install redis-server redis-tools)` : false;

interface Pair {
  prefix: string;
  procs: ChildTallyd[];
  senders: SteadySender[];
  names: string[];
  carbon: CarbonListener;
}

/** The first `${stem}<i>` whose shard satisfies pred. */
function nameIn(stem: string, pred: (shard: number) => boolean): string {
  for (let i = 0; i < 10_000; i++) if (pred(MAP.of(`${stem}${i}`))) return `${stem}${i}`;
  throw new Error(`no name ${stem}<i> in the wanted shards`);
}

describe('redis cluster', { skip }, () => {
  let cluster: RedisCluster | null = null;
  /** A cluster client of the test's own, to read what tallyd wrote (leases, the shard count). */
  let reader: Cluster | null = null;
  const f = new FaultFixture();
  const prefixes: string[] = [];
  /** The master (its address) that holds each shard's slot (refreshed as each test starts). */
  let shardMasters: string[] = [];

  before(async () => {
    assert.ok(HAVE_BINARIES, `CI=true: ${REDIS_SERVER_BIN} and ${REDIS_CLI_BIN} must be installed`);
    cluster = await RedisCluster.start();
    reader = new Cluster(cluster.seeds.map((a) => ({ host: '127.0.0.1', port: Number(a.split(':')[1]) })), { redisOptions: { maxRetriesPerRequest: 3 } });
    reader.on('error', () => undefined);
    shardMasters = await mastersOfShards();
  });
  after(async () => {
    reader?.disconnect();
    await cluster?.stop();
  });
  afterEach(async () => {
    await f.cleanup();
    for (const p of prefixes.splice(0)) await cluster?.cleanup(p);
  });

  function theCluster(): RedisCluster {
    assert.ok(cluster, 'the cluster started');
    return cluster;
  }

  /** The master (address) that holds each shard's slot now. */
  async function mastersOfShards(): Promise<string[]> {
    const c = theCluster();
    const out: string[] = [];
    for (const tag of MAP.tags) out.push((await c.masterOf(await c.keySlot(`{${tag}}`))).addr);
    return out;
  }

  function theReader(): Cluster {
    assert.ok(reader, 'the cluster client');
    return reader;
  }

  /**
   * Two tallyd on one prefix on the cluster (default shards), a Carbon listener, and a steady counter into each (not
   * started), named `cluster.<label>.<a|b><i>` with each name's shard chosen by pick[j] (any shard when absent).
   */
  async function startPair(label: string, redisExtra: Record<string, unknown> = {}, pick: Array<(shard: number) => boolean> = []): Promise<Pair> {
    const prefix = testPrefix(`cluster-${label}`);
    prefixes.push(prefix);
    shardMasters = await mastersOfShards(); // an earlier test may have moved a slot or failed a master over
    const carbon = new CarbonListener();
    f.carbons.push(carbon);
    await carbon.start();
    const ports = [await freeUdpPort(), await freeUdpPort()];
    const procs = ports.map((port) => spawnTallyd(testConfig(prefix, carbon.port, {
      servers: [{ server: 'udp', address: '127.0.0.1', port }],
      flushInterval: FLUSH_MS,
      batchInterval: 50,
      leaseTtl: 3000,
      redis: { nodes: theCluster().seeds, keyPrefix: prefix, ...redisExtra },
      log: { level: process.env.TEST_LOG_LEVEL ?? 'info' },
    })));
    f.children.push(...procs);
    for (const p of procs) await waitForOutput(p, 'tallyd is up');
    const names = ['a', 'b'].map((x, j) => nameIn(`cluster.${label}.${x}`, pick[j] ?? (() => true)));
    const senders = ports.map((port, i) => new SteadySender({ port, name: names[i] as string, everyMs: 10, incrementsPerDatagram: 3 }));
    f.senders.push(...senders);
    return { prefix, procs, senders, names, carbon };
  }

  /** Waits until every shard is led and both processes lead some; returns the holders (shard i at index i). */
  async function bothLead(pair: Pair): Promise<string[]> {
    return waitHolders(theReader(), pair.prefix, 'both tallyd leading shards', (h) => new Set(h).size === 2, 20_000);
  }

  /**
   * Stops the traffic, waits until Carbon has it all, and checks every period of both counters: exact per period
   * and in total, and no period published with two different values.
   */
  async function assertExact(t: TestContext, pair: Pair, settleMs = 30_000): Promise<void> {
    for (const s of pair.senders) await s.stop();
    const tail = (): string => pair.procs.map((p, i) => `\n--- tallyd ${i} output (tail) ---\n${p.output().slice(-2000)}`).join('');
    for (const [i, s] of pair.senders.entries()) {
      const series = `stats_counts.${pair.names[i]}`;
      const last = s.sent[s.sent.length - 1];
      assert.ok(last, 'traffic was sent');
      await waitSettled(() => pair.carbon.series(series), s.total, periodOf(last.tMs, FLUSH_MS) / 1000 + 2, settleMs);
      const report = checkPeriods(s.sent, pair.carbon.series(series), { intervalMs: FLUSH_MS, slackMs: 60 });
      diagnoseLines(t, `${series} (shard ${MAP.of(pair.names[i] as string)}):\n${report.text}`);
      // CLUSTER_DUMP=/tmp/x keeps each tallyd's whole log (/tmp/x.0, /tmp/x.1) when a check fails; with TEST_LOG_LEVEL=debug it shows every close.
      if (!report.ok && process.env.CLUSTER_DUMP) for (const [j, p] of pair.procs.entries()) writeFileSync(`${process.env.CLUSTER_DUMP}.${j}`, p.output());
      if (!report.ok) throw new Error(`${series}: per-period counts wrong\n${report.text}${tail()}`);
      assertPeriods(series, s.sent, pair.carbon.series(series), { intervalMs: FLUSH_MS, slackMs: 60 });
      const perTs = new Map<number, Set<string>>();
      for (const l of pair.carbon.series(series)) perTs.set(l.ts, (perTs.get(l.ts) ?? new Set()).add(l.value));
      for (const [ts, values] of perTs) assert.equal(values.size, 1, `period ${ts} of ${series} published with different values ${[...values].join('/')}`);
    }
    // Both processes lived throughout: no leader may have taken either for dead (a failover is not a death).
    const gaveUp = pair.procs.flatMap((p) => p.output().split('\n').filter((l) => l.includes('gave up on processes')));
    assert.deepEqual(gaveUp, [], 'a leader gave up on a live process');
  }

  test('two tallyd on the cluster (16 shards): both lead shards, the shards spread over all 3 masters, exact totals per name and per period', { timeout: 60_000 }, async (t) => {
    const c = theCluster();
    // One counter on each of two different masters.
    const pair = await startPair('two', {}, [(s) => shardMasters[s] === shardMasters[0], (s) => shardMasters[s] !== shardMasters[0]]);
    assert.equal(await recordedShards(theReader(), pair.prefix), SHARDS, 'the default shard count recorded');
    const holders = await bothLead(pair);
    const tokens = pair.procs.map(tokenOf);
    const byHolder = shardsByHolder(holders);
    t.diagnostic(`shards led: ${JSON.stringify(tokens.map((tk) => (tk === null ? [] : (byHolder.get(tk) ?? []))))}`);
    assert.ok(holders.every((h) => tokens.includes(h)), `every lease names one of the two processes: ${JSON.stringify(holders)} vs ${tokens.join(', ')}`);

    // Where each shard's keys are: its lease key's slot (CLUSTER KEYSLOT), the master that owns it, and the key there.
    const perMaster = new Map<string, number[]>();
    for (let i = 0; i < SHARDS; i++) {
      const key = new Keys(pair.prefix, MAP.tags[i]).lease;
      const slot = await c.keySlot(key);
      const master: ClusterNode = await c.masterOf(slot);
      assert.equal(master.addr, shardMasters[i], `shard ${i}'s lease in the slot of its tag`);
      assert.ok(slot >= Math.floor((i * 16384) / SHARDS) && slot < Math.floor(((i + 1) * 16384) / SHARDS), `shard ${i}'s slot ${slot} in band ${i}`);
      assert.equal(await master.call('EXISTS', key), 1, `shard ${i}'s lease is on ${master.addr} (asked without redirection)`);
      perMaster.set(master.addr, [...(perMaster.get(master.addr) ?? []), i]);
    }
    t.diagnostic(`shards per master: ${JSON.stringify(Object.fromEntries(perMaster))}`);
    const masters = (await c.topology()).filter((n) => n.master && !n.failed && n.slots.length > 0).map((n) => n.addr);
    assert.equal(masters.length, 3);
    assert.deepEqual([...perMaster.values()].map((v) => v.length).sort((a, b) => a - b), [5, 5, 6], 'the 16 shards spread 5, 5, 6 over the 3 masters');

    await Promise.all(pair.senders.map((s) => s.start()));
    await sleep(4000);
    await assertExact(t, pair);
  });

  test('tallyd --check probes the cluster: reachable, its masters, cluster_state ok', async () => {
    const out = await checkTallyd({ graphiteHost: null, redis: { nodes: theCluster().seeds.slice(0, 2), keyPrefix: testPrefix('cluster-check') } });
    assert.equal(out.code, 0, out.stderr);
    assert.match(out.stderr, /^ok {3}redis cluster nodes 127\.0\.0\.1:\d+,127\.0\.0\.1:\d+: reachable, Redis \d+\.\d+\.\d+, 3 masters, cluster_state ok; key prefix "[^"]+" holds no tallyd data of layout v\d+ yet; redis\.shards 16, recorded for the prefix: none yet$/m);
    const shown = JSON.parse(out.stdout) as { redis: { nodes: string[]; waitReplicas: number } };
    assert.deepEqual([shown.redis.nodes.length, shown.redis.waitReplicas], [2, 1]);
  });

  /** The distinct errors of the batchers' logged merge failures (rate-limited: the first of each burst), for diagnostics. */
  function mergeErrors(pair: Pair): string[] {
    const found = new Set<string>();
    for (const p of pair.procs) {
      for (const m of p.output().matchAll(/"err":"([^"]{0,160})[^\n]*"msg":"merge into redis failed/g)) found.add(m[1] as string);
    }
    return [...found];
  }

  /**
   * Steady traffic into a pair while one shard's slot moves to another master, held mid-migration for ~2 s; checks
   * every period. Counter a is in the migrated shard (its merges and its shard's flush meet the migration), counter b
   * in a shard on another master.
   */
  async function migrateUnderTraffic(t: TestContext, label: string, redisExtra: Record<string, unknown> = {}): Promise<Pair> {
    const c = theCluster();
    const shard = 5; // a middle shard (not shard 0, whose leader also waits for every other shard's commit)
    const pair = await startPair(label, redisExtra, [(s) => s === shard, (s) => shardMasters[s] !== shardMasters[shard]]);
    const holders = await bothLead(pair);
    t.diagnostic(`shard ${shard} led by tallyd ${pair.procs.map(tokenOf).indexOf(holders[shard] as string)}`);
    const slot = await c.keySlot(`{${MAP.tags[shard]}}`);
    const from = await c.masterOf(slot);
    const to = (await c.otherMasters(from))[0];
    assert.ok(to, 'another master');
    await Promise.all(pair.senders.map((s) => s.start()));
    await sleep(2500);
    await c.beginMigration(slot, from, to);
    t.diagnostic(`shard ${shard}, slot ${slot}: ${from.addr} -> ${to.addr}, migrating from ${Date.now()}`);
    // Hold the slot mid-migration, moving a few keys at a time: merges meet ASK and TRYAGAIN.
    let moved = 0;
    const holdUntil = Date.now() + 2000;
    while (Date.now() < holdUntil) {
      moved += await c.migrateKeys(slot, from, to, 2);
      await sleep(200);
    }
    await c.finishMigration(slot, from, to);
    t.diagnostic(`migration finished at ${Date.now()} (${moved} keys moved while held)`);
    assert.equal((await c.masterOf(slot)).addr, to.addr, 'the slot moved');
    await sleep(3000);
    await assertExact(t, pair);
    // The shard is still led after its move, and its lease is on the new master.
    assert.equal((await leaseHolders(pair.prefix, theReader())).filter((h) => h === null).length, 0, 'every shard led after the migration');
    assert.equal(await to.call('EXISTS', new Keys(pair.prefix, MAP.tags[shard]).lease), 1, `shard ${shard}'s lease on ${to.addr}`);
    return pair;
  }

  test('one shard\'s slot migrated to another master under traffic: batches wait and retry, every period exact', { timeout: 90_000 }, async (t) => {
    const pair = await migrateUnderTraffic(t, 'migrate');
    const replies = pair.procs.map((p) => p.output().match(/redis cluster: (ASK|TRYAGAIN|MOVED)\b/g) ?? []).flat();
    t.diagnostic(`cluster replies logged by the batchers (rate-limited): ${replies.join(', ')}`);
    assert.ok(replies.length > 0, 'the merges met the migration (ASK, TRYAGAIN or MOVED) and were retried');
  });

  test('the same migration with waitReplicas 0 (no WAIT: ioredis follows ASK and TRYAGAIN itself): every period exact', { timeout: 90_000 }, async (t) => {
    const pair = await migrateUnderTraffic(t, 'migrate0', { waitReplicas: 0 });
    t.diagnostic(`merge failures logged (rate-limited): ${mergeErrors(pair).join(' | ') || 'none'}`);
  });

  test('a master killed -9 under traffic: its shards fail over, every period exact, every shard led again', { timeout: 120_000 }, async (t) => {
    const c = theCluster();
    // Counter a in a shard of the master to be killed (shard 3's), counter b in a shard of another master.
    const killedShard = 3;
    shardMasters = await mastersOfShards();
    const doomed = shardMasters[killedShard] as string;
    const pair = await startPair('failover', {}, [(s) => shardMasters[s] === doomed, (s) => shardMasters[s] !== doomed]);
    await bothLead(pair);
    const slot = await c.keySlot(`{${MAP.tags[killedShard]}}`);
    const master = await c.masterOf(slot);
    assert.equal(master.addr, doomed);
    const itsShards = shardMasters.map((m, i) => (m === doomed ? i : -1)).filter((i) => i >= 0);
    await Promise.all(pair.senders.map((s) => s.start()));
    await sleep(2500);
    await c.kill9(master);
    const killedAt = Date.now();
    const promoted = await c.waitFailover(master, slot);
    t.diagnostic(`master ${master.addr} (shards ${itsShards.join(',')}) killed at ${killedAt}; ${promoted.addr} took slot ${slot} after ${Date.now() - killedAt} ms`);
    // The promoted replica has no replica of its own until the killed node is back (as systemd would restart it):
    // meanwhile WAIT 1 confirms nothing, so merges wait in memory, and periods stay open for them.
    await c.restart(master);
    await c.waitHealthy(30_000);
    t.diagnostic(`${master.addr} back as a replica ${Date.now() - killedAt} ms after the kill`);
    assert.equal((await c.masterOf(slot)).addr, promoted.addr, 'the promoted replica keeps the slot');
    await sleep(2000);
    await assertExact(t, pair, 45_000);
    const led = await waitUntil(async () => (await leaseHolders(pair.prefix, theReader())).every((h) => h !== null), 10_000);
    assert.ok(led, `every shard led after the failover: ${JSON.stringify(await leaseHolders(pair.prefix, theReader()))}`);
    t.diagnostic(`merge failures logged (rate-limited): ${mergeErrors(pair).join(' | ') || 'none'}`);
  });
});
