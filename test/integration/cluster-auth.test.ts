/**
 * tallyd on a Redis Cluster that requires a password (`requirepass` on every
 * node, `masterauth` for the replicas): one cluster of the test's own
 * (test/helpers/redis-cluster.ts) shared by the file's cases. With
 * `redis.password` tallyd merges (confirmed by WAIT 1: the replicas replicate
 * with masterauth) and flushes every period exact; `--check` with
 * `redis.username` and TALLYD_REDIS_PASSWORD reaches it and prints the
 * config without the password; a wrong password stops tallyd at start with
 * exit 1 and a message naming the nodes and never the password. The
 * console's `config` shows `redis > password: ***`.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { after, afterEach, before, describe, test } from 'node:test';
import { CarbonListener, freeUdpPort, sleep } from '../helpers/carbon.js';
import { askConsole } from '../helpers/console.js';
import { FaultFixture } from '../helpers/fault-fixture.js';
import { RedisCluster, REDIS_CLI_BIN } from '../helpers/redis-cluster.js';
import { REDIS_SERVER_BIN } from '../helpers/redis-server.js';
import { testPrefix } from '../helpers/redis.js';
import { assertPeriods, periodOf, SteadySender, waitSettled } from '../helpers/steady-traffic.js';
import { checkTallyd, spawnTallyd, testConfig, waitForOutput } from '../helpers/tallyd.js';

const FLUSH_MS = 1000;
const HAVE_BINARIES = existsSync(REDIS_SERVER_BIN) && existsSync(REDIS_CLI_BIN);
const skip = !HAVE_BINARIES && process.env.CI !== 'true' ? `needs ${REDIS_SERVER_BIN} and ${REDIS_CLI_BIN} (apt-get install redis-server redis-tools)` : false;
const PASSWORD = `pw-${randomBytes(8).toString('hex')}`;
const WRONG = `wrong-${randomBytes(8).toString('hex')}`;

describe('redis cluster with requirepass', { skip }, () => {
  let cluster: RedisCluster | null = null;
  const f = new FaultFixture();
  const prefixes: string[] = [];

  before(async () => {
    assert.ok(HAVE_BINARIES, `CI=true: ${REDIS_SERVER_BIN} and ${REDIS_CLI_BIN} must be installed`);
    cluster = await RedisCluster.start({ password: PASSWORD });
  });
  after(async () => {
    await cluster?.stop();
  });
  afterEach(async () => {
    await f.cleanup();
    for (const p of prefixes.splice(0)) await cluster?.cleanup(p);
  });

  function seeds(): string[] {
    assert.ok(cluster, 'the cluster started');
    return cluster.seeds;
  }

  function prefix(label: string): string {
    const p = testPrefix(`cluster-auth-${label}`);
    prefixes.push(p);
    return p;
  }

  test('with redis.password tallyd merges and flushes through it: every period exact', { timeout: 60_000 }, async () => {
    const carbon = new CarbonListener();
    f.carbons.push(carbon);
    await carbon.start();
    const port = await freeUdpPort();
    const keyPrefix = prefix('flush');
    const proc = spawnTallyd(testConfig(keyPrefix, carbon.port, {
      servers: [{ server: 'udp', address: '127.0.0.1', port }],
      flushInterval: FLUSH_MS,
      batchInterval: 50,
      redis: { nodes: seeds(), keyPrefix, password: PASSWORD },
      log: { level: 'info' },
    }));
    f.children.push(proc);
    await waitForOutput(proc, 'tallyd is up');
    const name = 'cluster.auth.a';
    const sender = new SteadySender({ port, name, everyMs: 10, incrementsPerDatagram: 3 });
    f.senders.push(sender);
    await sender.start();
    await sleep(3000);
    await sender.stop();
    const series = `stats_counts.${name}`;
    const last = sender.sent[sender.sent.length - 1];
    assert.ok(last, 'traffic was sent');
    await waitSettled(() => carbon.series(series), sender.total, periodOf(last.tMs, FLUSH_MS) / 1000 + 2, 30_000);
    const report = assertPeriods(series, sender.sent, carbon.series(series), { intervalMs: FLUSH_MS, slackMs: 60 });
    assert.ok(report.rows.filter((r) => r.sent > 0).length >= 3, `at least 3 periods with traffic:\n${report.text}`);
    // The console's `config` (statsd's) shows the key, not the password.
    const mgmt = /"port":(\d+)[^\n]*"msg":"management console listening"/.exec(proc.output());
    assert.ok(mgmt, proc.output());
    const shown = await askConsole(Number(mgmt[1]), 'config', 'redis > password: ***\n');
    assert.ok(shown.includes('redis > password: ***\n') && !shown.includes(PASSWORD), shown);
    assert.ok(!proc.output().includes(PASSWORD), 'the password is never logged');
  });

  test('--check with redis.username and TALLYD_REDIS_PASSWORD: reachable, the password shown as ***', async () => {
    const raw = { graphiteHost: null, redis: { nodes: seeds().slice(0, 2), username: 'default', keyPrefix: prefix('check') } };
    const out = await checkTallyd(raw, { TALLYD_REDIS_PASSWORD: PASSWORD });
    assert.equal(out.code, 0, out.stderr);
    assert.match(out.stderr, /^ok {3}redis cluster nodes 127\.0\.0\.1:\d+,127\.0\.0\.1:\d+: reachable, Redis \d+\.\d+\.\d+, 3 masters, cluster_state ok;/m);
    const shown = JSON.parse(out.stdout) as { redis: { username: string; password: string } };
    assert.deepEqual([shown.redis.username, shown.redis.password], ['default', '***']);
    assert.ok(!out.stdout.includes(PASSWORD) && !out.stderr.includes(PASSWORD), out.stdout + out.stderr);
  });

  test('a wrong password: exit 1 at start, naming the nodes and the keys, never the password', { timeout: 30_000 }, async () => {
    const nodes = seeds().slice(0, 3);
    const keyPrefix = prefix('wrong');
    const proc = spawnTallyd(testConfig(keyPrefix, null, { redis: { nodes, keyPrefix, password: WRONG }, log: { level: 'info' } }));
    f.children.push(proc);
    const code = await proc.exited;
    const out = proc.output();
    assert.equal(code, 1, out);
    assert.ok(out.includes(`tallyd: redis at redis cluster nodes ${nodes.join(',')} refused tallyd's credentials (redis.username, redis.password): `), out);
    assert.match(out, /WRONGPASS/);
    assert.ok(!out.includes(WRONG) && !out.includes(PASSWORD), out);
    assert.ok(!out.includes('tallyd is up'), out);
  });
});
