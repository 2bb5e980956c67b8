/**
 * The HTTP server against a real tallyd (a child process), a real Redis and a
 * Carbon listener: /healthz; /readyz up once a period is committed, down
 * with the reason when the operator said `health down` and when Redis (a
 * redis-server of the test's own) is paused; /metrics through `promtool
 * check metrics` with exact counters after known traffic (UDP lines, ZeroMQ items); /api/names and
 * /api/series against what Carbon received, and without Carbon; 404, 405,
 * 400; no listener when `http` is absent.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import net from 'node:net';
import { after, before, describe, test } from 'node:test';
import { deflateSync } from 'node:zlib';
import { Push } from 'zeromq';
import { alignToPeriod, CarbonListener, freePort, freeUdpPort, sendUdp } from '../helpers/carbon.js';
import { askConsole, askHealth } from '../helpers/console.js';
import { getJson, httpGet, waitForAnswer } from '../helpers/http.js';
import { Keys } from '../../src/store/keys.js';
import { RecentPeriods } from '../../src/store/recent.js';
import { ShardMap } from '../../src/store/shards.js';
import { Store } from '../../src/store/store.js';
import { createLogger } from '../../src/observability/logger.js';
import { commitInShard, mergeIntoShards } from '../helpers/shards.js';
import { cleanup, client, REDIS_URL, testPrefix } from '../helpers/redis.js';
import { RedisServer } from '../helpers/redis-server.js';
import { spawnTallyd, startDaemon, testConfig, waitForHttpPort, type ChildTallyd } from '../helpers/tallyd.js';
import type { Daemon } from '../../src/daemon.js';

const PROMTOOL = '/usr/bin/promtool';
const FLUSH_MS = 1000;

interface Ready {
  status: string;
  reasons: string[];
}
interface Names {
  boundaryMs: number | null;
  names: string[];
  truncated: boolean;
}
interface Series {
  name: string;
  t: number[];
  v: Array<number | null>;
}

/** Runs `promtool check metrics` on the text; resolves with its exit code and output. */
function promtool(text: string): Promise<{ code: number | null; out: string }> {
  return new Promise((resolve, reject) => {
    const p = spawn(PROMTOOL, ['check', 'metrics'], { stdio: ['pipe', 'pipe', 'pipe'] });
    let out = '';
    p.stdout.on('data', (d: Buffer) => (out += d.toString()));
    p.stderr.on('data', (d: Buffer) => (out += d.toString()));
    p.on('error', reject);
    p.on('close', (code) => resolve({ code, out }));
    p.stdin.end(text);
  });
}

/** One sample's value in an exposition text (a metric without labels), or null. */
function sampleOf(text: string, name: string): number | null {
  const m = new RegExp(`^${name} (\\S+)$`, 'm').exec(text);
  return m ? Number(m[1]) : null;
}

async function metricValue(port: number, name: string): Promise<number | null> {
  return sampleOf((await httpGet(port, '/metrics')).body, name);
}

async function waitForMetric(port: number, name: string, want: number): Promise<void> {
  await waitForAnswer(port, '/metrics', (a) => sampleOf(a.body, name) === want, `${name} == ${want}`);
}

function stop(child: ChildTallyd | undefined): Promise<unknown> {
  if (!child || child.proc.exitCode !== null) return Promise.resolve();
  child.proc.kill('SIGTERM');
  return child.exited;
}

describe('http server', () => {
  const prefix = testPrefix('http');
  const carbon = new CarbonListener();
  let child: ChildTallyd;
  let port = 0;
  let udp = 0;
  let mgmt = 0;
  let zmqPort = 0;

  before(async () => {
    await carbon.start();
    [udp, mgmt, zmqPort] = [await freeUdpPort(), await freePort(), await freePort()];
    child = spawnTallyd(
      testConfig(prefix, carbon.port, {
        servers: [{ server: 'udp', address: '127.0.0.1', port: udp }, { server: 'zmq', bind: `tcp://127.0.0.1:${zmqPort}`, type: 'pull' }],
        mgmt_port: mgmt,
        flushInterval: FLUSH_MS,
        http: { port: 0, address: '127.0.0.1' },
        log: { level: 'info' },
      }),
    );
    port = await waitForHttpPort(child);
  });
  after(async () => {
    await stop(child);
    await carbon.stop();
    await cleanup(prefix);
  });

  test('/healthz answers 200 ok, to HEAD without a body', async () => {
    const a = await httpGet(port, '/healthz');
    assert.deepEqual([a.status, a.body], [200, 'ok\n']);
    const head = await httpGet(port, '/healthz', 'HEAD');
    assert.deepEqual([head.status, head.body], [200, '']);
  });

  test('unknown paths are 404, other methods 405, bad parameters 400, each with a JSON error', async () => {
    const errorOf = (body: string): string => (JSON.parse(body) as { error: string }).error;
    for (const path of ['/nope', '/index.htm', '/api/nothing']) {
      const a = await httpGet(port, path);
      assert.equal(a.status, 404, path);
      assert.equal(errorOf(a.body), `not found: ${path}`);
    }
    for (const method of ['POST', 'PUT', 'DELETE']) {
      const a = await httpGet(port, '/healthz', method);
      assert.equal(a.status, 405, method);
      assert.equal(errorOf(a.body), `method ${method} not allowed: GET or HEAD`);
    }
    const bad: Array<[string, RegExp]> = [
      ['/api/names?limit=0', /^limit must be an integer from 1 to 500/],
      ['/api/names?limit=501', /^limit must be an integer from 1 to 500/],
      ['/api/names?q=a&q=b', /^q given 2 times/],
      ['/api/series', /^missing query parameter name$/],
      ['/api/series?name=', /^name must not be empty$/],
    ];
    for (const [path, error] of bad) {
      const a = await httpGet(port, path);
      assert.equal(a.status, 400, path);
      assert.match(errorOf(a.body), error, path);
    }
  });

  test('a request with a body is 413, headers over 16 KiB 431, a malformed request 400; the server goes on', async () => {
    const raw = (data: string): Promise<string> =>
      new Promise((resolve, reject) => {
        const sock = net.connect(port, '127.0.0.1');
        let out = '';
        sock.on('data', (d: Buffer) => (out += d.toString()));
        sock.on('close', () => resolve(out));
        sock.on('error', reject);
        sock.end(data);
      });
    const body = await raw('GET /healthz HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello');
    assert.match(body, /^HTTP\/1\.1 413 /);
    assert.match(body, /\{"error":"a GET request takes no body"\}$/);
    assert.match(await raw(`GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: ${'a'.repeat(17 * 1024)}\r\n\r\n`), /^HTTP\/1\.1 431 /);
    assert.match(await raw('HELLO\r\n\r\n'), /^HTTP\/1\.1 400 /);
    const long = await httpGet(port, `/api/names?q=${'a'.repeat(1001)}`);
    assert.deepEqual([long.status, long.body], [400, '{"error":"q is longer than 1000 characters"}']);
    assert.equal((await httpGet(port, '/healthz')).status, 200);
  });

  test('/readyz is 200 once a period is committed, 503 with the reason after `health down`, 200 after `health up`', async () => {
    await waitForAnswer(port, '/api/status', (a) => a.status === 200 && (JSON.parse(a.body) as { health: { lastCommit: { boundaryMs: number | null } } }).health.lastCommit.boundaryMs !== null, 'a committed period');
    const up = await httpGet(port, '/readyz');
    assert.equal(up.status, 200);
    assert.deepEqual(JSON.parse(up.body), { status: 'up', reasons: [] } satisfies Ready);
    try {
      assert.match(await askHealth(mgmt, 'health down'), /^health: down\n/);
      const down = await httpGet(port, '/readyz');
      assert.equal(down.status, 503);
      assert.deepEqual(JSON.parse(down.body), { status: 'down', reasons: ['set down by the operator (health down)'] } satisfies Ready);
    } finally {
      await askHealth(mgmt, 'health up');
    }
    assert.equal((await httpGet(port, '/readyz')).status, 200);
  });

  test('/api/status names the version, pid, uptime, leadership and the health report', async () => {
    const s = await getJson<{ version: string; pid: number; uptimeS: number; leader: boolean; health: { status: string; leader: boolean } }>(port, '/api/status');
    assert.equal(s.pid, child.proc.pid);
    assert.match(s.version, /^\d+\.\d+\.\d+/);
    assert.ok(Number.isInteger(s.uptimeS) && s.uptimeS >= 0);
    assert.equal(s.leader, s.health.leader);
    assert.equal(s.health.status, 'up');
    const { shards } = s.health as unknown as { shards: { count: number; led: number[] } };
    assert.equal(shards.count, 16);
    assert.equal(s.leader, shards.led.length > 0);
  });

  test('/metrics passes promtool and its counters move by exactly the traffic sent', async (t) => {
    const a = await httpGet(port, '/metrics');
    assert.equal(a.status, 200);
    assert.match(a.contentType, /^text\/plain; version=0\.0\.4/);
    if (existsSync(PROMTOOL)) {
      const check = await promtool(a.body);
      assert.equal(check.code, 0, check.out);
    } else if (process.env.CI === 'true') {
      assert.fail(`${PROMTOOL} is missing (Debian package prometheus); .ci/run installs it`);
    } else {
      t.diagnostic(`${PROMTOOL} missing: the exposition was not checked (CI=true makes this a failure)`);
    }
    const lines0 = sampleOf(a.body, 'tallyd_lines_received_total') as number;
    const packets0 = sampleOf(a.body, 'tallyd_packets_received_total') as number;
    const bad0 = sampleOf(a.body, 'tallyd_bad_lines_total') as number;
    // 1000 good lines in 10 datagrams of 100, then 3 bad lines in one.
    const datagrams = Array.from({ length: 10 }, (_, d) => Array.from({ length: 100 }, (_, i) => `http.metrics.c${d}_${i}:1|c`).join('\n'));
    await sendUdp(udp, [...datagrams, 'bad line one\nhttp.metrics.bad:x|c\nhttp.metrics.bad:1|zz']);
    await waitForMetric(port, 'tallyd_lines_received_total', lines0 + 1003);
    assert.equal(await metricValue(port, 'tallyd_packets_received_total'), packets0 + 11);
    assert.equal(await metricValue(port, 'tallyd_bad_lines_total'), bad0 + 3);
    // A ZeroMQ message of three good JSON items and one without a name.
    const items0 = sampleOf(a.body, 'tallyd_zmq_items_received_total') as number;
    const badItems0 = sampleOf(a.body, 'tallyd_zmq_bad_items_total') as number;
    const push = new Push({ linger: 0 });
    push.connect(`tcp://127.0.0.1:${zmqPort}`);
    try {
      await push.send(deflateSync(JSON.stringify([{ name: 'http.zmq.a', value: 1, type: 'c' }, { name: 'http.zmq.b', value: 2 }, { name: 'http.zmq.c', value: 3, type: 'ms' }, { value: 4 }])));
      await waitForMetric(port, 'tallyd_zmq_items_received_total', items0 + 3);
      assert.equal(await metricValue(port, 'tallyd_zmq_bad_items_total'), badItems0 + 1);
    } finally {
      push.close();
    }
    assert.equal(await metricValue(port, 'tallyd_redis_up'), 1);
    assert.equal(await metricValue(port, 'tallyd_leader'), 1);
    assert.equal(await metricValue(port, 'tallyd_shards'), 16, 'the default redis.shards');
    const led = await metricValue(port, 'tallyd_shards_led');
    assert.ok(led !== null && led >= 1 && led <= 16, `shards led: ${led}`);
  });

  test('/api/names finds a name sent in a past period and /api/series has its value of each period, as Carbon got them', async () => {
    const name = `http.series.n${process.pid}`;
    await alignToPeriod(FLUSH_MS);
    await sendUdp(udp, [`${name}:5|c`]);
    await alignToPeriod(FLUSH_MS);
    await sendUdp(udp, [`${name}:7|c`, `${name}:1|c`]);
    const graphite = `stats_counts.${name}`;
    await carbon.waitFor(() => carbon.series(graphite).some((l) => l.value === '8'), 10_000, `${graphite} 8 at Carbon`);
    const found = await waitForAnswer(port, `/api/names?q=${encodeURIComponent(name)}`, (a) => (JSON.parse(a.body) as Names).names.length > 0, 'the name');
    const names = JSON.parse(found.body) as Names;
    assert.deepEqual(names.names, [`stats.${name}`, graphite], found.body);
    assert.equal(names.truncated, false);
    assert.ok(names.boundaryMs !== null && names.boundaryMs % FLUSH_MS === 0);
    const limited = await getJson<Names>(port, `/api/names?q=${encodeURIComponent(name)}&limit=1`);
    assert.deepEqual([limited.names, limited.truncated], [[`stats.${name}`], true], JSON.stringify(limited));

    // The period is kept after its commit, in parallel with its delivery to Carbon: wait for it.
    const seriesPath = `/api/series?name=${encodeURIComponent(graphite)}`;
    const kept = await waitForAnswer(port, seriesPath, (a) => (JSON.parse(a.body) as Series).v.filter((v) => v !== null).length >= 2, 'two periods kept');
    const s = JSON.parse(kept.body) as Series;
    assert.equal(s.name, graphite);
    assert.equal(s.t.length, s.v.length);
    const atCarbon = new Map(carbon.series(graphite).map((l) => [l.ts, Number(l.value)]));
    const sent = s.t.map((t, i) => [t, s.v[i]] as const).filter(([, v]) => v !== null);
    const seen = `series ${JSON.stringify(s)}, carbon ${JSON.stringify([...atCarbon])}`;
    assert.deepEqual(sent.slice(0, 2).map(([, v]) => v), [5, 8], `the two periods with traffic, in order: ${seen}`);
    for (const [t, v] of sent) if (atCarbon.has(t)) assert.equal(v, atCarbon.get(t), `period ${t}: ${seen}`);
    assert.ok(sent.every(([t]) => atCarbon.has(t) || t > Math.max(...atCarbon.keys())), 'every period Carbon got is in the series');
    const none = await getJson<Series>(port, '/api/series?name=no.such.name');
    assert.ok(none.v.every((v) => v === null));
  });

  test('/api/history has this process\'s figures from the first sample on', async () => {
    const h = await getJson<{ stepMs: number; t: number[]; series: Record<string, Array<number | null>> }>(port, '/api/history');
    assert.equal(h.stepMs, 10_000);
    assert.ok(h.t.length >= 1 && h.t.length <= 360);
    const keys = ['received_per_s', 'bad_lines_per_s', 'dropped_per_s', 'udp_kernel_drops_per_s', 'flush_time_ms', 'timestamp_lag_s',
      'outbox_bytes', 'outbox_oldest_age_s', 'batches_waiting', 'leader'];
    assert.deepEqual(Object.keys(h.series).sort(), [...keys].sort());
    for (const k of keys) assert.equal(h.series[k]?.length, h.t.length, k);
    assert.equal(h.series['received_per_s']?.[0], null, 'no rate before a second sample');
    assert.equal(h.series['batches_waiting']?.[0], 0);
    // Once a sample is taken after all the traffic, the rates times their spans add up to every line and item received.
    const exposition = (await httpGet(port, '/metrics')).body;
    const total = (sampleOf(exposition, 'tallyd_lines_received_total') as number) + (sampleOf(exposition, 'tallyd_zmq_items_received_total') as number);
    const sentBy = Date.now();
    type History = { t: number[]; series: Record<string, Array<number | null>> };
    const later = JSON.parse((await waitForAnswer(port, '/api/history', (a) => ((JSON.parse(a.body) as History).t.at(-1) ?? 0) > sentBy + 100, 'a sample after the traffic', 15_000)).body) as History;
    const rates = later.series['received_per_s'] ?? [];
    let sum = 0;
    for (let i = 1; i < later.t.length; i++) sum += (rates[i] ?? 0) * (((later.t[i] as number) - (later.t[i - 1] as number)) / 1000);
    assert.ok(Math.abs(sum - total) < 1, `rates add up to ${sum}, received ${total}`);
    assert.equal(later.series['leader']?.at(-1), 1);
  });

  test('a fresh process on the same prefix, which committed none of those periods, answers the same names and series', async () => {
    const second = spawnTallyd(testConfig(prefix, null, { flushInterval: FLUSH_MS, http: { port: 0 }, log: { level: 'info' } }));
    try {
      const port2 = await waitForHttpPort(second);
      // With shards it may soon lead some of them (rendezvous hashing): its answers do not depend on it.
      const status = await getJson<{ leader: boolean; health: { lastCommittedByThisProcessS: number | null; shards: { led: number[] } } }>(port2, '/api/status');
      assert.equal(status.leader, status.health.shards.led.length > 0);
      const name = `stats_counts.http.series.n`;
      const [a, b] = await Promise.all([getJson<Names>(port, `/api/names?q=${name}`), getJson<Names>(port2, `/api/names?q=${name}`)]);
      assert.ok(a.names.length > 0);
      if (a.boundaryMs === b.boundaryMs) assert.deepEqual(b, a);
      assert.deepEqual(b.names, a.names);
      const graphite = a.names[0] as string;
      const [s1, s2] = await Promise.all([getJson<Series>(port, `/api/series?name=${graphite}`), getJson<Series>(port2, `/api/series?name=${graphite}`)]);
      const common = s1.t.filter((t) => s2.t.includes(t));
      assert.ok(common.length > 0);
      for (const t of common) assert.equal(s2.v[s2.t.indexOf(t)], s1.v[s1.t.indexOf(t)], `period ${t}`);
    } finally {
      await stop(second);
    }
  });
});

describe('http with a Redis that stops answering, and without Carbon', () => {
  const prefix = testPrefix('http-redis');
  let redis: RedisServer;
  let child: ChildTallyd;
  let port = 0;
  let udp = 0;

  before(async () => {
    redis = await RedisServer.start();
    udp = await freeUdpPort();
    child = spawnTallyd(
      testConfig(prefix, null, {
        servers: [{ server: 'udp', address: '127.0.0.1', port: udp }],
        flushInterval: FLUSH_MS,
        redis: { url: redis.url, keyPrefix: prefix, commandTimeout: 500 },
        http: { port: 0 },
        log: { level: 'info' },
      }),
    );
    port = await waitForHttpPort(child);
  });
  after(async () => {
    redis?.resume();
    await stop(child);
    await redis?.stop();
  });

  test('names and series are there without Carbon', async () => {
    const name = `http.nocarbon.n${process.pid}`;
    await sendUdp(udp, [`${name}:3|c`]);
    const found = await waitForAnswer(port, `/api/names?q=nocarbon`, (a) => (JSON.parse(a.body) as Names).names.length === 2, 'the name');
    assert.deepEqual((JSON.parse(found.body) as Names).names, [`stats.${name}`, `stats_counts.${name}`]);
    const s = await getJson<Series>(port, `/api/series?name=stats_counts.${name}`);
    assert.equal(s.v.find((v) => v !== null), 3);
  });

  test('/readyz is 503 with the reason while Redis is paused, 200 again after; /healthz and /metrics still answer', async () => {
    await waitForAnswer(port, '/readyz', (a) => a.status === 200, 'ready');
    redis.pause();
    try {
      const down = await waitForAnswer(port, '/readyz', (a) => a.status === 503, 'not ready');
      const body = JSON.parse(down.body) as Ready;
      assert.equal(body.status, 'down');
      assert.deepEqual(body.reasons, ['redis does not answer: no PING reply within 500 ms']);
      assert.deepEqual([(await httpGet(port, '/healthz')).status], [200]);
      const m = await httpGet(port, '/metrics');
      assert.equal(m.status, 200);
      assert.equal(sampleOf(m.body, 'tallyd_redis_up'), 0);
      assert.equal(sampleOf(m.body, 'tallyd_outbox_bytes'), null, 'unknown while Redis does not answer');
      if (existsSync(PROMTOOL)) assert.equal((await promtool(m.body)).code, 0);
      // Each /readyz now waits for its PING (500 ms): beyond 16 running, requests are refused at once, and counted.
      const refused0 = sampleOf(m.body, 'tallyd_http_refused_total') as number;
      const answers = await Promise.all(Array.from({ length: 40 }, () => httpGet(port, '/readyz')));
      const busy = answers.filter((a) => a.status === 503 && (JSON.parse(a.body) as { error?: string }).error?.startsWith('busy: '));
      // Normally 24; fewer only if some requests reach the server after the first ones finished (a loaded machine).
      assert.ok(busy.length > 0 && busy.length <= 40 - 16, `${busy.length} refused as busy`);
      assert.ok(answers.every((a) => a.status === 503), 'the others are not ready');
      assert.equal(await metricValue(port, 'tallyd_http_refused_total'), refused0 + busy.length);
    } finally {
      redis.resume();
    }
    await waitForAnswer(port, '/readyz', (a) => a.status === 200, 'ready again');
  });
});

describe('http history that cannot be written', () => {
  const prefix = testPrefix('http-history-fault');
  const carbon = new CarbonListener();
  let child: ChildTallyd;

  after(async () => {
    await stop(child);
    await carbon.stop();
    await cleanup(prefix);
  });

  test('the commit and delivery go on, the failure is counted, the API answers 500 with the error', async () => {
    await carbon.start();
    // The history's index key holds a string: every write of it fails with WRONGTYPE, as a real fault would.
    const r = client();
    // Shard 0's (the default 16 shards): its history cannot be written, and a read over every shard fails with it.
    await r.set(new Keys(prefix, new ShardMap(16).tags[0]).recent, 'not a sorted set');
    r.disconnect();
    const udp = await freeUdpPort();
    child = spawnTallyd(
      testConfig(prefix, carbon.port, {
        servers: [{ server: 'udp', address: '127.0.0.1', port: udp }],
        flushInterval: FLUSH_MS,
        http: { port: 0 },
        log: { level: 'info' },
      }),
    );
    const port = await waitForHttpPort(child);
    await sendUdp(udp, ['http.fault.hits:4|c']);
    await carbon.waitFor(() => carbon.sum('stats_counts.http.fault.hits') === 4, 10_000, 'the counter at Carbon');
    await waitForAnswer(port, '/metrics', (a) => (sampleOf(a.body, 'tallyd_history_errors_total') ?? 0) > 0, 'a history error counted');
    const names = await httpGet(port, '/api/names?q=fault');
    assert.equal(names.status, 500);
    assert.match((JSON.parse(names.body) as { error: string }).error, /WRONGTYPE/);
    assert.equal((await httpGet(port, '/healthz')).status, 200);
    assert.match(child.output(), /could not keep a committed period for the HTTP API/);
  });
});

describe('http with Carbon unreachable', () => {
  test('/readyz turns 503 once the outbox holds 90 % of outboxMaxBytes, with that reason', async () => {
    const prefix = testPrefix('http-outbox-full');
    const carbonPort = await freePort(); // nothing listens there
    // tallyd's own lines alone (statsd.*, graphiteStats) make each period an outbox entry of well under 10 % of this bound.
    const maxBytes = 12 * 1024;
    const daemon = await startDaemon(testConfig(prefix, carbonPort, { flushInterval: 500, outboxMaxBytes: maxBytes, http: { port: 0 } }));
    try {
      const port = daemon.ports.http as number;
      const full = new RegExp(`^the outbox is at (9\\d|100) % of its bound: \\d+ bytes of outboxMaxBytes ${maxBytes}; `);
      const down = await waitForAnswer(port, '/readyz', (a) => a.status === 503 && (JSON.parse(a.body) as Ready).reasons.some((r) => full.test(r)), 'the outbox reason', 30_000);
      assert.equal((JSON.parse(down.body) as Ready).status, 'down');
      const m = (await httpGet(port, '/metrics')).body;
      assert.ok((sampleOf(m, 'tallyd_outbox_bytes') as number) >= 0.9 * maxBytes, m);
      assert.equal(sampleOf(m, 'tallyd_outbox_max_bytes'), maxBytes);
      assert.equal(sampleOf(m, 'tallyd_up'), 0);
    } finally {
      await daemon.stop();
      await cleanup(prefix);
    }
  });
});

describe('http history bound smaller than one period', () => {
  test('no period with lines is kept, each is counted as skipped, and names and series answer with nothing', async () => {
    const prefix = testPrefix('http-history-skip');
    // 1 byte: smaller than any shard's period with a line (with shards, each shard keeps its own periods, a few lines
    // each; a shard whose period has no line keeps it, empty, so names may name a period and still list nothing).
    const daemon = await startDaemon(testConfig(prefix, null, { flushInterval: FLUSH_MS, http: { port: 0, historyMaxBytes: 1 } }));
    try {
      const port = daemon.ports.http as number;
      await waitForAnswer(port, '/metrics', (a) => (sampleOf(a.body, 'tallyd_history_skipped_total') ?? 0) >= 2, 'two periods skipped');
      assert.equal(await metricValue(port, 'tallyd_history_errors_total'), 0);
      assert.match(await askConsole(daemon.ports.mgmt, 'stats'), /\ntallyd\.history_skipped: [1-9]\d*\n/);
      const names = await getJson<Names>(port, '/api/names?q=statsd');
      assert.deepEqual([names.names, names.truncated], [[], false], JSON.stringify(names));
      const series = await getJson<Series>(port, '/api/series?name=statsd.numStats');
      assert.equal(series.name, 'statsd.numStats');
      assert.ok(series.v.every((v) => v === null), JSON.stringify(series));
    } finally {
      await daemon.stop();
      await cleanup(prefix);
    }
  });
});

describe('http absent from the config', () => {
  test('no HTTP listener (statsd has none)', async () => {
    const prefix = testPrefix('http-off');
    const daemon = await startDaemon(testConfig(prefix, null));
    try {
      assert.equal(daemon.ports.http, null);
    } finally {
      await daemon.stop();
      await cleanup(prefix);
    }
  });
});

describe('http over shards: names, series, outbox and commits from several shards', () => {
  const prefix = testPrefix('http-shards');
  const HOUR = 3_600_000;
  /** The daemon's flushInterval: no boundary passes during the test (unless it runs across midnight UTC). */
  const DAY = 24 * HOUR;
  let store: Store;
  let daemon: Daemon | null = null;
  after(async () => {
    await daemon?.stop();
    await store?.quit();
    await cleanup(prefix);
  });

  test('/api/names merges every shard\'s names, /api/series reads the shard that has one, /metrics sums the outboxes', async () => {
    store = await Store.open({ url: REDIS_URL, keyPrefix: prefix, shards: 4 }, createLogger('silent'));
    // The last day boundary committed on every shard (as their leaders would), each with an outbox chunk; then the
    // recent history of two periods, each name in its own shard, as each shard's HistorySink keeps it.
    const P = Math.floor(Date.now() / DAY) * DAY;
    await mergeIntoShards(store, [0, 1, 2, 3].map((i) => ({ c: `hs.c${i}`, v: i })), P);
    const chunks = store.shards.map((st) => `hs.outbox.${st.shard} ${st.shard} ${P / 1000}\n`.repeat(st.shard + 1));
    for (const st of store.shards) await commitInShard(st, P, [chunks[st.shard]!]);
    const names = Array.from({ length: 24 }, (_, i) => `stats.hs.n${String(i).padStart(2, '0')}`);
    const bounds = { maxBytes: 1e9, maxPeriods: 10, ttlMs: HOUR };
    for (const [k, b] of [P - 2 * HOUR, P - HOUR].entries()) {
      for (const st of store.shards) {
        const own = names.filter((n) => store.shardOf(n) === st.shard);
        await new RecentPeriods(store.redis, st.keys).append(b, own, own.map((n) => String(10 * k + Number(n.slice(-2)))), 100, bounds);
      }
    }
    const shardsHolding = new Set(names.map((n) => store.shardOf(n)));
    assert.equal(shardsHolding.size, 4, 'names in every shard');
    // Carbon unreachable: the outbox stays; a day's period: nothing else is committed during the test.
    daemon = await startDaemon(testConfig(prefix, await freePort(), { flushInterval: DAY, http: { port: 0 }, redis: { url: REDIS_URL, keyPrefix: prefix, shards: 4 } }));
    const port = daemon.ports.http as number;

    const listed = await getJson<Names>(port, '/api/names?q=stats.hs.&limit=500');
    assert.deepEqual(listed, { boundaryMs: P - HOUR, names, truncated: false });
    assert.deepEqual(await getJson<Names>(port, '/api/names?q=stats.hs.n1&limit=5'), { boundaryMs: P - HOUR, names: names.slice(10, 15), truncated: true });
    for (const n of [names[0]!, names[7]!, names[23]!]) {
      const k = Number(n.slice(-2));
      assert.deepEqual(await getJson<Series>(port, `/api/series?name=${n}`), { name: n, t: [(P - 2 * HOUR) / 1000, (P - HOUR) / 1000], v: [k, 10 + k] }, `${n} in shard ${store.shardOf(n)}`);
    }

    const m = (await httpGet(port, '/metrics')).body;
    assert.equal(sampleOf(m, 'tallyd_shards'), 4);
    assert.equal(sampleOf(m, 'tallyd_outbox_entries'), 4);
    assert.equal(sampleOf(m, 'tallyd_outbox_bytes'), chunks.reduce((a, c) => a + Buffer.byteLength(c), 0));
    const status = await getJson<{ leader: boolean; health: { status: string; lastCommit: { boundaryMs: number | null; shard: number | null }; shards: { count: number; led: number[] } } }>(port, '/api/status');
    assert.equal(status.health.status, 'up');
    assert.deepEqual(status.health.lastCommit.boundaryMs, P, 'every shard committed P');
    assert.equal(status.health.shards.count, 4);
    assert.equal(sampleOf(m, 'tallyd_shards_led'), status.health.shards.led.length);
    assert.equal(sampleOf(m, 'tallyd_leader'), status.leader ? 1 : 0);
    assert.deepEqual(await httpGet(port, '/readyz').then((a) => [a.status, JSON.parse(a.body)]), [200, { status: 'up', reasons: [] }]);
  });
});
