/**
 * tallyd on a real Redis Cluster (issue 11, first step): 3 masters and 3
 * replicas of the test's own (test/helpers/redis-cluster.ts), shared by the
 * file's tests, each with its own key prefix. tallyd runs with the default
 * redis.shards (16): every key of a shard carries the shard's hash tag, so
 * each shard sits in one slot, and the shards spread over the masters. Two
 * tallyd processes on one prefix, each with its own UDP port and counter
 * under steady traffic; Carbon must get every period exact (per name, per
 * period): on a healthy cluster, with the master of the first counter's
 * shard's slot killed -9 (its replica promoted; merges confirmed by WAIT 1
 * survive it), and with that slot migrated to another master under traffic
 * (ASK/TRYAGAIN/MOVED while the keys move: batches wait and retry).
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, afterEach, before, describe, test, type TestContext } from 'node:test';
import { CarbonListener, freeUdpPort, sleep } from '../helpers/carbon.js';
import { FaultFixture } from '../helpers/fault-fixture.js';
import { RedisCluster, REDIS_CLI_BIN } from '../helpers/redis-cluster.js';
import { REDIS_SERVER_BIN } from '../helpers/redis-server.js';
import { testPrefix } from '../helpers/redis.js';
import { ShardMap } from '../../src/store/shards.js';
import { assertPeriods, checkPeriods, diagnoseLines, periodOf, SteadySender, waitSettled } from '../helpers/steady-traffic.js';
import { ROOT, spawnTallyd, testConfig, waitForOutput, type ChildTallyd } from '../helpers/tallyd.js';

const FLUSH_MS = 1000;
/** tallyd's default redis.shards: the slot a test moves or kills is that of the shard holding its first counter. */
const SHARDS = 16;

/** The hash tag key (`{<tag>}`) of the shard holding name. */
function shardSlotKey(name: string): string {
  const map = new ShardMap(SHARDS);
  return `{${map.tags[map.of(name)]}}`;
}
const HAVE_BINARIES = existsSync(REDIS_SERVER_BIN) && existsSync(REDIS_CLI_BIN);
const skip = !HAVE_BINARIES && process.env.CI !== 'true' ? `needs ${REDIS_SERVER_BIN} and ${REDIS_CLI_BIN} (apt-get install redis-server redis-tools)` : false;

interface Pair {
  procs: ChildTallyd[];
  senders: SteadySender[];
  names: string[];
  carbon: CarbonListener;
}

describe('redis cluster', { skip }, () => {
  let cluster: RedisCluster | null = null;
  const f = new FaultFixture();
  const prefixes: string[] = [];

  before(async () => {
    assert.ok(HAVE_BINARIES, `CI=true: ${REDIS_SERVER_BIN} and ${REDIS_CLI_BIN} must be installed`);
    cluster = await RedisCluster.start();
  });
  after(async () => {
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

  /** Two tallyd on one prefix on the cluster, a Carbon listener, and a steady counter into each (not started). */
  async function startPair(label: string, redisExtra: Record<string, unknown> = {}): Promise<Pair> {
    const prefix = testPrefix(`cluster-${label}`);
    prefixes.push(prefix);
    const carbon = new CarbonListener();
    f.carbons.push(carbon);
    await carbon.start();
    const ports = [await freeUdpPort(), await freeUdpPort()];
    const procs = ports.map((port) => spawnTallyd(testConfig(prefix, carbon.port, {
      servers: [{ server: 'udp', address: '127.0.0.1', port }],
      flushInterval: FLUSH_MS,
      batchInterval: 50,
      leaseTtl: 3000,
      redis: { nodes: theCluster().seeds, keyPrefix: prefix, shards: SHARDS, ...redisExtra },
      log: { level: process.env.TEST_LOG_LEVEL ?? 'info' },
    })));
    f.children.push(...procs);
    for (const p of procs) await waitForOutput(p, 'tallyd is up');
    const names = [`cluster.${label}.a`, `cluster.${label}.b`];
    const senders = ports.map((port, i) => new SteadySender({ port, name: names[i] as string, everyMs: 10, incrementsPerDatagram: 3 }));
    f.senders.push(...senders);
    return { procs, senders, names, carbon };
  }

  /** Stops the traffic, waits until Carbon has it all, and checks every period of both counters. */
  async function assertExact(t: TestContext, pair: Pair, settleMs = 30_000): Promise<void> {
    for (const s of pair.senders) await s.stop();
    const tail = (): string => pair.procs.map((p, i) => `\n--- tallyd ${i} output (tail) ---\n${p.output().slice(-2000)}`).join('');
    for (const [i, s] of pair.senders.entries()) {
      const series = `stats_counts.${pair.names[i]}`;
      const last = s.sent[s.sent.length - 1];
      assert.ok(last, 'traffic was sent');
      await waitSettled(() => pair.carbon.series(series), s.total, periodOf(last.tMs, FLUSH_MS) / 1000 + 2, settleMs);
      const report = checkPeriods(s.sent, pair.carbon.series(series), { intervalMs: FLUSH_MS, slackMs: 60 });
      diagnoseLines(t, `${series}:\n${report.text}`);
      // CLUSTER_DUMP=/tmp/x keeps each tallyd's whole log (/tmp/x.0, /tmp/x.1) when a check fails; with TEST_LOG_LEVEL=debug it shows every close.
      if (!report.ok && process.env.CLUSTER_DUMP) for (const [j, p] of pair.procs.entries()) writeFileSync(`${process.env.CLUSTER_DUMP}.${j}`, p.output());
      if (!report.ok) throw new Error(`${series}: per-period counts wrong\n${report.text}${tail()}`);
      assertPeriods(series, s.sent, pair.carbon.series(series), { intervalMs: FLUSH_MS, slackMs: 60 });
    }
    const leaders = pair.procs.filter((p) => p.output().includes('became the flushing leader'));
    assert.ok(leaders.length >= 1, `a leader flushed${tail()}`);
  }

  test('two tallyd on the cluster: exact totals per name and per period, one flush per period', { timeout: 60_000 }, async (t) => {
    const pair = await startPair('two');
    await Promise.all(pair.senders.map((s) => s.start()));
    await sleep(4000);
    await assertExact(t, pair);
    for (const name of pair.names) {
      const perTs = new Map<number, Set<string>>();
      for (const l of pair.carbon.series(`stats_counts.${name}`)) perTs.set(l.ts, (perTs.get(l.ts) ?? new Set()).add(l.value));
      for (const [ts, values] of perTs) assert.equal(values.size, 1, `period ${ts} of ${name} published with different values ${[...values].join('/')}`);
    }
  });

  test('tallyd --check probes the cluster: reachable, its masters, cluster_state ok', async () => {
    const file = path.join(mkdtempSync(path.join(tmpdir(), 'tallyd-cluster-check-')), 'config.json');
    writeFileSync(file, JSON.stringify({ graphiteHost: null, redis: { nodes: theCluster().seeds.slice(0, 2), keyPrefix: testPrefix('cluster-check') } }));
    const env = { ...process.env };
    delete env.REDIS_URL;
    delete env.TALLYD_REDIS_URL;
    const out = await new Promise<{ code: number; stdout: string; stderr: string }>((resolve) => {
      execFile(process.execPath, ['--import', 'tsx', path.join(ROOT, 'src', 'main.ts'), '--check', file], { cwd: ROOT, env, timeout: 30_000 },
        (err, stdout, stderr) => resolve({ code: err === null ? 0 : Number((err as NodeJS.ErrnoException).code ?? 1), stdout, stderr }));
    });
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

  /** Steady traffic into a pair while the slot of the first counter's shard moves to another master, held mid-migration for ~2 s; checks every period. */
  async function migrateUnderTraffic(t: TestContext, label: string, redisExtra: Record<string, unknown> = {}): Promise<Pair> {
    const c = theCluster();
    const pair = await startPair(label, redisExtra);
    const slot = await c.keySlot(shardSlotKey(pair.names[0] as string));
    const from = await c.masterOf(slot);
    const to = (await c.otherMasters(from))[0];
    assert.ok(to, 'another master');
    await Promise.all(pair.senders.map((s) => s.start()));
    await sleep(2500);
    await c.beginMigration(slot, from, to);
    t.diagnostic(`slot ${slot}: ${from.addr} -> ${to.addr}, migrating from ${Date.now()}`);
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
    return pair;
  }

  test('a shard\'s slot migrated to another master under traffic: batches wait and retry, every period exact', { timeout: 90_000 }, async (t) => {
    const pair = await migrateUnderTraffic(t, 'migrate');
    const replies = pair.procs.map((p) => p.output().match(/redis cluster: (ASK|TRYAGAIN|MOVED)\b/g) ?? []).flat();
    t.diagnostic(`cluster replies logged by the batchers (rate-limited): ${replies.join(', ')}`);
    assert.ok(replies.length > 0, 'the merges met the migration (ASK, TRYAGAIN or MOVED) and were retried');
  });

  test('the same migration with waitReplicas 0 (no WAIT: ioredis follows ASK and TRYAGAIN itself): every period exact', { timeout: 90_000 }, async (t) => {
    const pair = await migrateUnderTraffic(t, 'migrate0', { waitReplicas: 0 });
    t.diagnostic(`merge failures logged (rate-limited): ${mergeErrors(pair).join(' | ') || 'none'}`);
  });

  test('the master of a shard\'s slot killed -9 under traffic: after the failover every period exact', { timeout: 120_000 }, async (t) => {
    const c = theCluster();
    const pair = await startPair('failover');
    const slot = await c.keySlot(shardSlotKey(pair.names[0] as string));
    const master = await c.masterOf(slot);
    await Promise.all(pair.senders.map((s) => s.start()));
    await sleep(2500);
    await c.kill9(master);
    const killedAt = Date.now();
    const promoted = await c.waitFailover(master, slot);
    t.diagnostic(`master ${master.addr} killed at ${killedAt}; ${promoted.addr} took slot ${slot} after ${Date.now() - killedAt} ms`);
    // The promoted replica has no replica of its own until the killed node is back (as systemd would restart it):
    // meanwhile WAIT 1 confirms nothing, so merges wait in memory, and periods stay open for them.
    await c.restart(master);
    await c.waitHealthy(30_000);
    t.diagnostic(`${master.addr} back as a replica ${Date.now() - killedAt} ms after the kill`);
    assert.equal((await c.masterOf(slot)).addr, promoted.addr, 'the promoted replica keeps the slot');
    await sleep(2000);
    await assertExact(t, pair, 45_000);
    t.diagnostic(`merge failures logged (rate-limited): ${mergeErrors(pair).join(' | ') || 'none'}`);
  });
});
