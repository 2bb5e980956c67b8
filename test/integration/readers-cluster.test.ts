/**
 * The readers of the state over shards on a real Redis Cluster (3 masters,
 * 3 replicas of the test's own): with redis.shards 6 the shards' hash tags
 * spread over every master, and each reader reads every shard with one
 * command or one single-slot pipeline per shard (a pipeline mixing slots
 * fails on a cluster). The management console's listings and del*, the
 * health facts (outboxes summed, the oldest commit), the HTTP history and
 * `--check`'s shard line, against samples, commits and history written into
 * several shards through the real scripts and writer.
 */
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { after, before, describe, test } from 'node:test';
import type { Daemon } from '../../src/daemon.js';
import { createLogger } from '../../src/observability/logger.js';
import { probeCluster } from '../../src/store/probe.js';
import { RecentPeriods, RecentShards } from '../../src/store/recent.js';
import { Store } from '../../src/store/store.js';
import { askConsole } from '../helpers/console.js';
import { freePort } from '../helpers/carbon.js';
import { getJson, httpGet } from '../helpers/http.js';
import { RedisCluster, REDIS_CLI_BIN } from '../helpers/redis-cluster.js';
import { REDIS_SERVER_BIN } from '../helpers/redis-server.js';
import { testPrefix } from '../helpers/redis.js';
import { commitInShard, mergeIntoShards, namesOverShards } from '../helpers/shards.js';
import { startDaemon, testConfig } from '../helpers/tallyd.js';

const HAVE_BINARIES = existsSync(REDIS_SERVER_BIN) && existsSync(REDIS_CLI_BIN);
const skip = !HAVE_BINARIES && process.env.CI !== 'true' ? `needs ${REDIS_SERVER_BIN} and ${REDIS_CLI_BIN} (apt-get install redis-server redis-tools)` : false;
const DAY = 86_400_000;
const SHARDS = 6;

describe('readers over shards on a redis cluster', { skip }, () => {
  let cluster: RedisCluster | null = null;
  const prefix = testPrefix('readers-cluster');
  let store: Store;
  let daemon: Daemon | null = null;

  before(async () => {
    assert.ok(HAVE_BINARIES, `CI=true: ${REDIS_SERVER_BIN} and ${REDIS_CLI_BIN} must be installed`);
    cluster = await RedisCluster.start();
    store = await Store.open({ url: '', nodes: cluster.seeds, keyPrefix: prefix, shards: SHARDS }, createLogger('silent'));
  });
  after(async () => {
    await daemon?.stop();
    await store?.quit();
    await cluster?.cleanup(prefix);
    await cluster?.stop();
  });

  test('console, health, history and --check read every shard, the shards spread over all three masters', async () => {
    const c = cluster as RedisCluster;
    const masters = new Set<string>();
    for (const st of store.shards) masters.add((await c.masterOf(await c.keySlot(st.keys.lease))).addr);
    assert.equal(masters.size, 3, 'the shards live on every master');

    const P = Math.floor(Date.now() / DAY) * DAY;
    const counters = namesOverShards(store, 'rc.c', SHARDS);
    // The last day boundary committed on every shard with an outbox chunk each; then samples of the open period.
    await mergeIntoShards(store, counters.map((x) => ({ c: x.name, v: 1 })), P);
    const chunks = store.shards.map((st) => `rc.outbox.${st.shard} 1 ${P / 1000}\n`);
    for (const st of store.shards) await commitInShard(st, P, [chunks[st.shard]!]);
    await mergeIntoShards(store, counters.map((x, i) => ({ c: x.name, v: i + 1 })), P + DAY);
    const history = namesOverShards(store, 'stats.rc.h', SHARDS).map((x) => x.name);
    for (const st of store.shards) {
      const own = history.filter((n) => store.shardOf(n) === st.shard);
      await new RecentPeriods(store.redis, st.keys).append(P, own, own.map((n) => n.slice('stats.rc.h'.length)), 10, { maxBytes: 1e9, maxPeriods: 10, ttlMs: DAY });
    }

    const recent = new RecentShards(store.shards.map((st) => new RecentPeriods(st.redis, st.keys)));
    assert.deepEqual(await recent.names('stats.rc.h', 500), { boundaryMs: P, names: [...history].sort(), truncated: false });
    for (const n of history) assert.deepEqual(await recent.series(n), { t: [P / 1000], v: [Number(n.slice('stats.rc.h'.length))] });

    // Carbon unreachable (the outbox stays), a day's period (nothing else is committed meanwhile).
    daemon = await startDaemon(testConfig(prefix, await freePort(), { flushInterval: DAY, http: { port: 0 }, redis: { nodes: c.seeds, keyPrefix: prefix, shards: SHARDS } }));
    const mgmt = daemon.ports.mgmt;
    const listed = await askConsole(mgmt, 'counters', 'END\n\n', 10_000);
    counters.forEach((x, i) => assert.match(listed, new RegExp(`'${x.name.replace('.', '\\.')}': ${i + 1}[,\\n ]`), `${x.name} (shard ${x.shard})`));
    const del = await askConsole(mgmt, 'delcounters rc.*', 'END\n\n', 10_000);
    assert.deepEqual(del.split('\n').filter((l) => l.startsWith('deleted: ')).sort(), counters.map((x) => `deleted: ${x.name}`).sort());
    assert.doesNotMatch(await askConsole(mgmt, 'counters', 'END\n\n', 10_000), /'rc\./);
    const stats = await askConsole(mgmt, 'stats', 'END\n\n', 10_000);
    assert.match(stats, new RegExp(`\\nflush\\.shards: ${SHARDS}\\n`));
    assert.match(stats, new RegExp(`\\noutbox\\.entries: ${SHARDS}\\noutbox\\.bytes: ${chunks.join('').length}\\n`));
    assert.match(stats, new RegExp(`\\nflush\\.last_committed_period: ${P / 1000}\\n`));

    const port = daemon.ports.http as number;
    assert.deepEqual(await getJson(port, `/api/names?q=stats.rc.h`), { boundaryMs: P, names: [...history].sort(), truncated: false });
    const metrics = (await httpGet(port, '/metrics')).body;
    assert.match(metrics, new RegExp(`^tallyd_shards ${SHARDS}$`, 'm'));
    assert.match(metrics, new RegExp(`^tallyd_outbox_entries ${SHARDS}$`, 'm'));
    assert.equal((await httpGet(port, '/readyz')).status, 200);

    const probe = await probeCluster(c.seeds, prefix, SHARDS, 5000);
    assert.ok(probe.ok, probe.text);
    assert.match(probe.text, new RegExp(`; redis\\.shards ${SHARDS}, recorded for the prefix: ${SHARDS}$`));
    const other = await probeCluster(c.seeds, prefix, 16, 5000);
    assert.equal(other.ok, false);
    assert.match(other.text, new RegExp(`: ESHARDS redis\\.shards is 16, but the state .* was created with ${SHARDS} shard\\(s\\)`));
  });
});
