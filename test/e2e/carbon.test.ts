/**
 * End to end through Debian's graphite-carbon: hot-shots (UDP) -> tallyd ->
 * Redis -> carbon-cache's plaintext line receiver (and, from a second tallyd
 * with graphiteProtocol "pickle", its pickle receiver) -> whisper files, read
 * back with whisper-fetch. carbon-cache runs in the foreground as a child process,
 * on free loopback ports, with its own conf and storage in a temp dir.
 *
 * Skipped only when carbon-cache or whisper-fetch is missing and CI is unset;
 * under CI a missing tool fails the run (.ci/run installs both).
 */
import assert from 'node:assert/strict';
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import { accessSync, constants, existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { promisify } from 'node:util';
import StatsD, { type StatsD as StatsDClient } from 'hot-shots';
import type { Daemon } from '../../src/daemon.js';
import { alignToPeriod, freePort, sleep } from '../helpers/carbon.js';
import { cleanup, testPrefix } from '../helpers/redis.js';
import { startDaemon, testConfig } from '../helpers/tallyd.js';

const execFileAsync = promisify(execFile);

/**
 * 2 s, not 1 s: Graphite timestamps are whole seconds, so with a 1 s interval
 * "the point's timestamp is a multiple of flushInterval" would hold for any
 * timestamp at all.
 */
const FLUSH = 2000;
const STEP = FLUSH / 1000;
/** carbon-cache writes asynchronously (its writer thread drains the cache). */
const WRITE_TIMEOUT_MS = 20_000;

function onPath(cmd: string): string | null {
  for (const dir of (process.env.PATH ?? '').split(path.delimiter)) {
    if (!dir) continue;
    const file = path.join(dir, cmd);
    try {
      accessSync(file, constants.X_OK);
      return file;
    } catch {
      // not in this directory
    }
  }
  return null;
}

const missing = ['carbon-cache', 'whisper-fetch'].filter((cmd) => onPath(cmd) === null);
const missingText = `${missing.join(' and ')} ${missing.length > 1 ? 'are' : 'is'} not installed`;
const inCi = Boolean(process.env.CI);
const skip = missing.length > 0 && !inCi ? `${missingText} (apt-get install graphite-carbon python3-whisper); set CI=1 to make this a failure` : false;

interface CarbonCache {
  proc: ChildProcess;
  linePort: number;
  picklePort: number;
  whisperDir: string;
  output: () => string;
  exited: Promise<void>;
}

/** carbon.conf for one test instance: everything under dir, loopback only, no rate limits. */
function writeCarbonConf(dir: string, ports: { line: number; pickle: number; query: number }): string {
  const storage = path.join(dir, 'storage');
  const whisper = path.join(storage, 'whisper');
  mkdirSync(whisper, { recursive: true });
  const conf = path.join(dir, 'carbon.conf');
  writeFileSync(
    conf,
    [
      '[cache]',
      `STORAGE_DIR = ${storage}`,
      `LOCAL_DATA_DIR = ${whisper}`,
      `WHISPER_DIR = ${whisper}`,
      `LOG_DIR = ${path.join(storage, 'log')}`,
      `PID_DIR = ${storage}`,
      'USER =',
      'LINE_RECEIVER_INTERFACE = 127.0.0.1',
      `LINE_RECEIVER_PORT = ${ports.line}`,
      'ENABLE_UDP_LISTENER = False',
      'PICKLE_RECEIVER_INTERFACE = 127.0.0.1',
      `PICKLE_RECEIVER_PORT = ${ports.pickle}`,
      'CACHE_QUERY_INTERFACE = 127.0.0.1',
      `CACHE_QUERY_PORT = ${ports.query}`,
      'MAX_CACHE_SIZE = inf',
      'MAX_CREATES_PER_MINUTE = inf',
      'MAX_UPDATES_PER_SECOND = inf',
      'LOG_LISTENER_CONN_SUCCESS = False',
      // carbon 1.1 stores `name;k=v` series under _tagged/<sha256[0:3]>/<sha256[3:6]>/<sha256>.wsp
      // whatever ENABLE_TAGS says; ENABLE_TAGS only adds the POST of every new
      // series to graphite-web's tag database (GRAPHITE_URL), which is not running here.
      'ENABLE_TAGS = False',
      'TAG_HASH_FILENAMES = True',
      '',
    ].join('\n'),
  );
  writeFileSync(path.join(dir, 'storage-schemas.conf'), '[everything]\npattern = .*\nretentions = 1s:1h\n');
  // One archive, so no roll-up ever happens; present only to pin the default and silence carbon's warning.
  writeFileSync(path.join(dir, 'storage-aggregation.conf'), '[default]\npattern = .*\nxFilesFactor = 0\naggregationMethod = average\n');
  return conf;
}

async function startCarbonCache(dir: string): Promise<CarbonCache> {
  const ports = { line: await freePort(), pickle: await freePort(), query: await freePort() };
  const conf = writeCarbonConf(dir, ports);
  // --nodaemon keeps twistd in the foreground (logging to stdout) in this very pid.
  const proc = spawn('carbon-cache', [`--config=${conf}`, `--pidfile=${path.join(dir, 'carbon-cache.pid')}`, '--nodaemon', 'start'], {
    cwd: dir,
    env: { ...process.env, PYTHONWARNINGS: 'ignore' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  proc.stdout?.on('data', (d: Buffer) => (out += d.toString()));
  proc.stderr?.on('data', (d: Buffer) => (out += d.toString()));
  const exited = new Promise<void>((resolve) => proc.once('exit', () => resolve()));
  proc.once('error', (err) => (out += `\nspawn error: ${err.message}`));
  const carbon: CarbonCache = { proc, linePort: ports.line, picklePort: ports.pickle, whisperDir: path.join(dir, 'storage', 'whisper'), output: () => out, exited };

  const deadline = Date.now() + 15_000;
  while (!(await accepts(ports.line)) || !(await accepts(ports.pickle))) {
    if (proc.exitCode !== null || proc.signalCode !== null || out.includes('spawn error')) {
      throw new Error(`carbon-cache exited before listening:\n${out}`);
    }
    if (Date.now() > deadline) {
      await stopCarbonCache(carbon);
      throw new Error(`carbon-cache's line (${ports.line}) or pickle (${ports.pickle}) receiver did not accept connections within 15 s:\n${out}`);
    }
    await sleep(100);
  }
  return carbon;
}

function accepts(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const sock = net.connect({ host: '127.0.0.1', port }, () => {
      sock.destroy();
      resolve(true);
    });
    sock.once('error', () => resolve(false));
  });
}

async function stopCarbonCache(carbon: CarbonCache): Promise<void> {
  const { proc } = carbon;
  if (proc.exitCode !== null || proc.signalCode !== null || proc.pid === undefined) return;
  proc.kill('SIGTERM');
  let timer: NodeJS.Timeout | undefined;
  const stopped = await Promise.race([
    carbon.exited.then(() => true),
    new Promise<boolean>((resolve) => (timer = setTimeout(() => resolve(false), 5000))),
  ]);
  clearTimeout(timer);
  if (!stopped) {
    proc.kill('SIGKILL');
    await carbon.exited;
  }
}

/** Where carbon's whisper backend keeps a series (carbon.util.TaggedSeries.encode, hashed filenames). */
function whisperFile(root: string, metric: string): string {
  if (!metric.includes(';')) return path.join(root, ...metric.split('.')) + '.wsp';
  // carbon hashes the normalized name: the name, then the tags sorted by key.
  const [name = '', ...tags] = metric.split(';');
  const normalized = [name, ...tags.sort()].join(';');
  const hash = createHash('sha256').update(normalized).digest('hex');
  return path.join(root, '_tagged', hash.slice(0, 3), hash.slice(3, 6), `${hash}.wsp`);
}

interface Point {
  ts: number;
  value: number;
}

/**
 * Non-empty points of a whisper file since `from` (unix seconds), via
 * whisper-fetch. Not `--drop=nulls`: whisper-fetch 1.1.4 filters the values
 * and then numbers the survivors from the start of the range, one step apart,
 * so every timestamp after the first dropped slot is wrong.
 */
async function fetchPoints(file: string, from: number): Promise<Point[]> {
  const { stdout } = await execFileAsync('whisper-fetch', [`--from=${from}`, file]);
  const points: Point[] = [];
  for (const line of stdout.split('\n')) {
    const [ts = '', value = 'None'] = line.split('\t');
    if (line === '' || value === 'None') continue;
    points.push({ ts: Number(ts), value: Number(value) });
  }
  return points;
}

/** Polls whisper-fetch until the series holds a point that `ready` accepts; returns all its points. */
async function waitForPoints(root: string, metric: string, from: number, ready: (p: Point) => boolean): Promise<Point[]> {
  const file = whisperFile(root, metric);
  const deadline = Date.now() + WRITE_TIMEOUT_MS;
  let last = 'no whisper file yet';
  while (Date.now() < deadline) {
    if (existsSync(file)) {
      try {
        const points = await fetchPoints(file, from);
        if (points.some(ready)) return points;
        last = `points so far: ${JSON.stringify(points)}`;
      } catch (err) {
        last = `whisper-fetch failed: ${(err as Error).message}`; // e.g. the file is still being created
      }
    }
    await sleep(200);
  }
  throw new Error(`timed out after ${WRITE_TIMEOUT_MS} ms waiting for ${metric} in ${file}: ${last}`);
}

function closeClient(c: StatsDClient): Promise<void> {
  return new Promise((resolve) => c.close(() => resolve()));
}

describe('end to end through graphite-carbon (carbon-cache + whisper)', { skip }, () => {
  let dir = '';
  let carbon: CarbonCache | null = null;
  let daemon: Daemon | null = null;
  let pickler: Daemon | null = null;
  const prefix = testPrefix('e2e-carbon');
  const picklePrefix = testPrefix('e2e-pickle');

  before(async () => {
    if (missing.length > 0) throw new Error(`CI is set but ${missingText} (.ci/run installs graphite-carbon and python3-whisper)`);
    dir = mkdtempSync(path.join(tmpdir(), 'tallyd-e2e-carbon-'));
    carbon = await startCarbonCache(dir);
    daemon = await startDaemon(testConfig(prefix, carbon.linePort, { flushInterval: FLUSH }));
    pickler = await startDaemon(testConfig(picklePrefix, null, {
      flushInterval: FLUSH, graphiteHost: '127.0.0.1', graphiteProtocol: 'pickle', graphitePicklePort: carbon.picklePort,
      graphite: { legacyNamespace: false, globalPrefix: 'pk' },
    }));
  });

  after(async () => {
    await daemon?.stop();
    await pickler?.stop();
    await cleanup(picklePrefix);
    if (carbon) await stopCarbonCache(carbon);
    await cleanup(prefix);
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  test('counter, timer, gauge, set and tagged counter land in whisper at the period boundary', async () => {
    assert.ok(daemon && carbon);
    const root = carbon.whisperDir;
    const client = new StatsD({ host: '127.0.0.1', port: daemon.ports.udp[0], protocol: 'udp', errorHandler: (e) => assert.fail(e) });
    // Send everything just after a boundary, so it all falls in the one period [start, start + FLUSH).
    const start = await alignToPeriod(FLUSH);
    for (let i = 0; i < 50; i++) client.increment('e2e.requests');
    for (let i = 1; i <= 20; i++) client.timing('e2e.latency', i);
    client.gauge('e2e.temperature', 42);
    for (let i = 0; i < 10; i++) client.set('e2e.users', `user-${i % 5}`);
    for (let i = 0; i < 7; i++) client.increment('e2e.tagged', 1, { route: 'home' });
    await closeClient(client);
    assert.ok(Date.now() < start + FLUSH - 500, 'sending took too long to stay inside one period');

    const from = start / 1000 - 60;
    const nonZero = (p: Point) => p.value !== 0;
    /** The period's one non-zero point: counters, timers and sets emit 0 in idle periods. */
    const only = async (metric: string): Promise<Point> => {
      const points = (await waitForPoints(root, metric, from, nonZero)).filter(nonZero);
      assert.equal(points.length, 1, `${metric}: one non-zero point, got ${JSON.stringify(points)}`);
      return points[0]!;
    };

    const requests = await only('stats_counts.e2e.requests');
    assert.equal(requests.value, 50);
    assert.equal((await only('stats.e2e.requests')).value, 50 / STEP); // per second
    const upper = await only('stats.timers.e2e.latency.upper');
    assert.equal(upper.value, 20);
    const count = await only('stats.timers.e2e.latency.count');
    assert.equal(count.value, 20);
    const mean = await only('stats.timers.e2e.latency.mean');
    assert.equal(mean.value, 10.5);
    const users = await only('stats.sets.e2e.users.count');
    assert.equal(users.value, 5);
    const tagged = await only('stats_counts.e2e.tagged;route=home');
    assert.equal(tagged.value, 7);
    // A gauge is re-sent every flush (statsd's default): its first point is our period's.
    const gauges = await waitForPoints(root, 'stats.gauges.e2e.temperature', from, () => true);
    assert.ok(gauges.every((p) => p.value === 42), `gauge points: ${JSON.stringify(gauges)}`);
    const gauge = gauges[0]!;

    // Stamped with the period's boundary: a multiple of flushInterval, one of the
    // two boundaries of the period we sent in, and the same for every line of it.
    assert.equal(requests.ts % STEP, 0, `timestamp ${requests.ts} is a multiple of ${STEP} s`);
    assert.ok(requests.ts === start / 1000 || requests.ts === (start + FLUSH) / 1000, `timestamp ${requests.ts} bounds the period starting at ${start / 1000}`);
    for (const [name, p] of Object.entries({ upper, count, mean, users, tagged, gauge })) {
      assert.equal(p.ts, requests.ts, `${name} has the period's timestamp`);
    }
    // carbon-cache closes each delivery cleanly after reading it to the end: no delivery was counted lost.
    assert.equal(daemon.self.carbonErrors, 0);
  });

  test('through the pickle receiver (graphiteProtocol "pickle"): counter, timer and tagged counter land in whisper', async () => {
    assert.ok(pickler && carbon);
    const root = carbon.whisperDir;
    const client = new StatsD({ host: '127.0.0.1', port: pickler.ports.udp[0], protocol: 'udp', errorHandler: (e) => assert.fail(e) });
    const start = await alignToPeriod(FLUSH);
    for (let i = 0; i < 30; i++) client.increment('e2e.pickled');
    for (let i = 1; i <= 4; i++) client.timing('e2e.pickled_ms', i * 10);
    for (let i = 0; i < 3; i++) client.increment('e2e.pickled_tagged', 1, { route: 'away' });
    await closeClient(client);
    assert.ok(Date.now() < start + FLUSH - 500, 'sending took too long to stay inside one period');
    const from = start / 1000 - 60;
    const nonZero = (p: Point) => p.value !== 0;
    const only = async (metric: string): Promise<Point> => {
      const points = (await waitForPoints(root, metric, from, nonZero)).filter(nonZero);
      assert.equal(points.length, 1, `${metric}: one non-zero point, got ${JSON.stringify(points)}`);
      return points[0]!;
    };
    const count = await only('pk.counters.e2e.pickled.count');
    assert.equal(count.value, 30);
    assert.equal((await only('pk.counters.e2e.pickled.rate')).value, 30 / STEP);
    assert.equal((await only('pk.timers.e2e.pickled_ms.upper')).value, 40);
    const tagged = await only('pk.counters.e2e.pickled_tagged.count;route=away');
    assert.equal(tagged.value, 3);
    assert.equal(count.ts % STEP, 0, `timestamp ${count.ts} is a multiple of ${STEP} s`);
    assert.equal(tagged.ts, count.ts);
    assert.equal(pickler.self.carbonErrors, 0, 'the pickle receiver closes cleanly after reading to the end too');
  });
});
