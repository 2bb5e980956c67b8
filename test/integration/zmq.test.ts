/**
 * ZeroMQ status messages into tallyd, tallyd into a Carbon listener, the real
 * Redis between them, real sockets: PUB publishers to a bound SUB (after the
 * slow-joiner wait) and PUSH publishers to a bound PULL; zlib and plain
 * JSON, arrays and single objects, statsd lines, a topic frame; counters
 * summed exactly over 10,000 items; gauges, timers and sets computed like
 * their statsd twins; passthrough lines with their own timestamps (one an
 * hour old), through a Carbon outage; garbage among good messages; the
 * README's Python publisher under python3 + python3-zmq, and its TypeScript
 * one through StatusPublisher.
 */
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import path from 'node:path';
import { after, afterEach, before, describe, test } from 'node:test';
import { deflateSync } from 'node:zlib';
import { Publisher, Push } from 'zeromq';
import type { Daemon } from '../../src/daemon.js';
import { StatusPublisher } from '../../src/publisher/status-publisher.js';
import { askConsole } from '../helpers/console.js';
import { alignToPeriod, CarbonListener, freePort, sendUdp, sleep } from '../helpers/carbon.js';
import { prefixOutboxText } from '../helpers/outbox.js';
import { cleanup, client, testPrefix } from '../helpers/redis.js';
import { ROOT, startDaemon, testConfig } from '../helpers/tallyd.js';

const FLUSH = 1000;

type Frame = string | Buffer;
type ZmqEntry = { type: 'sub' | 'pull'; mode?: 'aggregate' | 'passthrough'; prefix?: string; maxMessageSize?: number };

const zlib = (v: unknown): Buffer => deflateSync(JSON.stringify(v));
const plain = (v: unknown): string => JSON.stringify(v);

/** Publishes a heartbeat (`[]`) until tallyd has received one: ZeroMQ's slow joiner drops a PUB's first messages. */
async function joined(daemon: Daemon, send: () => Promise<void>): Promise<void> {
  const before = daemon.self.zmqMessagesReceived;
  const deadline = Date.now() + 5000;
  while (daemon.self.zmqMessagesReceived === before) {
    if (Date.now() > deadline) throw new Error('the publisher never reached tallyd');
    await send();
    await sleep(20);
  }
}

/** A python3 that can import zmq: Debian's /usr/bin/python3 first (a pyenv python3 on PATH may not see python3-zmq). */
function pythonWithZmq(): string | null {
  for (const py of ['/usr/bin/python3', 'python3']) {
    if (spawnSync(py, ['-c', 'import zmq'], { stdio: 'ignore' }).status === 0) return py;
  }
  return null;
}

describe('ZeroMQ status messages to Carbon', () => {
  let carbon: CarbonListener;
  let daemon: Daemon | null = null;
  let prefix = '';
  const sockets: Array<Publisher | Push> = [];

  before(async () => {
    carbon = new CarbonListener();
    await carbon.start();
  });
  after(async () => {
    await carbon.stop();
  });
  afterEach(async () => {
    for (const s of sockets.splice(0)) s.close();
    await daemon?.stop();
    daemon = null;
    await cleanup(prefix);
    carbon.lines.length = 0;
  });

  async function start(name: string, zmq: ZmqEntry[], carbonPort = carbon.port): Promise<Daemon> {
    prefix = testPrefix(`zmq-${name}`);
    const servers = [
      { server: 'udp', address: '127.0.0.1', port: 0 },
      ...zmq.map((z) => ({ server: 'zmq', bind: 'tcp://127.0.0.1:0', mode: 'aggregate', ...z })),
    ];
    daemon = await startDaemon(testConfig(prefix, carbonPort, { flushInterval: FLUSH, servers }));
    assert.equal(daemon.ports.zmq.length, zmq.length);
    return daemon;
  }

  function pub(endpoint: string, sendHighWaterMark = 1000): Publisher {
    const s = new Publisher({ sendHighWaterMark, linger: 0 });
    s.connect(endpoint);
    sockets.push(s);
    return s;
  }

  function push(endpoint: string): Push {
    const s = new Push({ linger: 0 });
    s.connect(endpoint);
    sockets.push(s);
    return s;
  }

  /** The first non-zero value of a metric (idle counters and timers are re-emitted as 0, gauges as they were). */
  function value(name: string): string | undefined {
    return carbon.series(name).find((l) => l.value !== '0')?.value;
  }

  test('PUB to SUB: zlib and plain, arrays and single objects, statsd lines and a topic frame', async () => {
    const d = await start('formats', [{ type: 'sub' }]);
    const p = pub(d.ports.zmq[0]!);
    await joined(d, () => p.send('[]'));
    const frames: Frame[][] = [
      [zlib([{ name: 'fmt.zlib_array', value: 1, type: 'c' }, { name: 'fmt.gauge', value: 5, time: Date.now() / 1000 }])],
      [plain([{ name: 'fmt.plain_array', value: 2, type: 'c' }, { name: 'fmt.tagged', value: 1, type: 'c', tags: { region: 'eu' } }])],
      [zlib({ name: 'fmt.zlib_object', value: 3, type: 'c' })],
      [plain({ name: 'fmt.plain_object', value: 4, type: 'c' })],
      ['fmt.lines:5|c\nfmt.lines:6|c|@0.5\nfmt.timer:7|ms'],
      [deflateSync('fmt.zlib_lines:8|c')],
      ['status.web1', zlib([{ name: 'fmt.topic', value: 9, type: 'c' }])],
    ];
    for (const f of frames) await p.send(f);
    const want: Array<[string, number]> = [['fmt.zlib_array', 1], ['fmt.plain_array', 2], ['fmt.tagged;region=eu', 1], ['fmt.zlib_object', 3],
      ['fmt.plain_object', 4], ['fmt.lines', 17], ['fmt.zlib_lines', 8], ['fmt.topic', 9]];
    // The names sit in different shards, each flushed by its own shard's leader: wait for every one, then compare exactly.
    // (Not throwing on timeout: the comparison below names what is missing.)
    await carbon.waitFor(() => want.every(([n, v]) => carbon.sum(`stats_counts.${n}`) >= v), 5000, 'every message\'s counter').catch(() => undefined);
    assert.deepEqual(want.map(([n]) => [n, carbon.sum(`stats_counts.${n}`)]), want);
    await carbon.waitFor(() => carbon.series('stats.gauges.fmt.gauge').length > 0, 3000, 'the gauge');
    await carbon.waitFor(() => carbon.series('stats.timers.fmt.timer.upper').length > 0, 3000, 'the timer');
    assert.equal(value('stats.gauges.fmt.gauge'), '5');
    assert.equal(value('stats.timers.fmt.timer.upper'), '7');
    assert.deepEqual([d.self.zmqBadFrames, d.self.zmqBadItems, d.parser.badLines], [0, 0, 0]);
  });

  test('a bind conflict fails the start with one line naming the endpoint', async () => {
    const first = await start('conflict', [{ type: 'pull' }]);
    const taken = first.ports.zmq[0]!;
    const second = testPrefix('zmq-conflict-2');
    try {
      await assert.rejects(
        startDaemon(testConfig(second, carbon.port, { servers: [{ server: 'zmq', bind: taken, type: 'sub' }] })),
        (err: Error) => {
          assert.equal(err.name, 'ListenError');
          assert.equal(err.message, `cannot listen on zmq sub ${taken}: address already in use (EADDRINUSE)`);
          return true;
        },
      );
    } finally {
      await cleanup(second);
    }
  });

  test('PUSH to PULL: 10,000 counter items in 1,000 messages are summed exactly', async () => {
    const d = await start('exact', [{ type: 'pull' }]);
    const s = push(d.ports.zmq[0]!);
    let expectedWeighted = 0;
    for (let m = 0; m < 1000; m++) {
      const items: object[] = [];
      for (let i = 0; i < 10; i++) {
        const n = m * 10 + i;
        // The same counter with and without the optional members.
        items.push(i % 2 === 0 ? { name: 'exact.c', value: 1, type: 'c', time: Date.now() / 1000 } : { name: 'exact.c', value: 1, type: 'c', tags: [], seq: n });
        items.push({ name: 'exact.w', value: n % 7, type: 'c' });
        expectedWeighted += n % 7;
      }
      if (m % 100 === 0) items.push({ name: 'exact.sampled', value: 1, type: 'c', rate: 0.1 });
      await s.send(m % 2 === 0 ? zlib(items) : plain(items));
    }
    // Each name's shard is flushed by its own leader: wait for every one of them.
    await carbon.waitFor(() => carbon.sum('stats_counts.exact.c') >= 10000, 10_000, '10,000 counter items');
    await carbon.waitFor(() => carbon.sum('stats_counts.exact.w') >= expectedWeighted && carbon.sum('stats_counts.exact.sampled') >= 100,
      3000, 'the weighted and sampled counters');
    await carbon.waitFor(() => carbon.sum('stats_counts.statsd.zmq_messages_received') >= 1000, 3000, 'the self-metric');
    await sleep(FLUSH + 200); // and nothing more arrives
    assert.equal(carbon.sum('stats_counts.exact.c'), 10000);
    assert.equal(carbon.sum('stats_counts.exact.w'), expectedWeighted);
    assert.equal(carbon.sum('stats_counts.exact.sampled'), 100);
    assert.equal(carbon.sum('stats_counts.statsd.zmq_messages_received'), 1000);
    assert.deepEqual(carbon.series('stats_counts.statsd.zmq_bad_frames'), []);
  });

  test('PUSH to PULL: a burst, a pause, then messages one by one all arrive (the loop drains, holds, then blocks again)', async () => {
    const d = await start('hold', [{ type: 'pull' }]);
    const s = push(d.ports.zmq[0]!);
    for (let m = 0; m < 300; m++) await s.send(zlib([{ name: 'hold.burst', value: 1, type: 'c' }]));
    await carbon.waitFor(() => d.self.zmqMessagesReceived >= 300, 5000, 'the burst');
    await sleep(100); // idle: the loop is back to a blocking receive
    for (let m = 0; m < 12; m++) {
      await s.send(plain({ name: 'hold.one', value: 1, type: 'c' }));
      if (m % 3 === 2) await sleep(30);
    }
    await carbon.waitFor(() => carbon.sum('stats_counts.hold.one') === 12 && carbon.sum('stats_counts.hold.burst') === 300, 5000, 'hold.one = 12, hold.burst = 300');
    assert.equal(d.self.zmqMessagesReceived, 312);
  });

  test('gauges, timers, counters and sets are computed like their statsd twins', async () => {
    const d = await start('twins', [{ type: 'sub' }]);
    const p = pub(d.ports.zmq[0]!);
    await joined(d, () => p.send('[]'));
    const items: object[] = [];
    const lines: string[] = [];
    const both = (name: string, type: string, v: number | string, extra: { rate?: number } = {}, line = `${v}|${type}`) => {
      items.push({ name: `zt.${name}`, value: v, type, ...extra });
      lines.push(`zu.${name}:${line}${extra.rate === undefined ? '' : `|@${extra.rate}`}`);
    };
    for (let i = 1; i <= 100; i++) both('lat', 'ms', (i * 37) % 101);
    for (let i = 0; i < 10; i++) both('sampled_lat', 'ms', i * 1.5, { rate: 0.5 });
    for (const v of [-3, 0, 12.25]) both('hist', 'h', v);
    both('dist', 'd', 4);
    for (let i = 0; i < 10; i++) both('count', 'c', 2, { rate: 0.1 });
    for (const v of [3, 7, 1.5]) both('gauge', 'g', v);
    both('negative', 'g', -4, {}, '0|g\nzu.negative:-4|g'); // JSON gauges are absolute; statsd needs 0 then -4 for that
    for (const m of ['u1', 'u2', 'u1', 'u3']) both('users', 's', m);
    await alignToPeriod(FLUSH);
    await Promise.all([p.send(zlib(items)), sendUdp(d.ports.udp[0]!, [lines.join('\n')])]);

    const twinTs = (): number | undefined => carbon.series('stats.timers.zu.lat.count').find((l) => l.value === '100')?.ts;
    await carbon.waitFor(() => twinTs() !== undefined && carbon.series('stats.timers.zt.lat.count').some((l) => l.ts === twinTs()),
      5000, 'both timers in one period');
    const ts = twinTs()!;
    const at = (stem: string) => new Map(carbon.lines.filter((l) => l.ts === ts && l.name.includes(stem)).map((l) => [l.name.replace(stem, '.'), l.value]));
    // The twins' names sit in different shards, each delivered by its own shard's leader: wait until every shard's
    // lines of the period are in (as many zt lines as zu lines, at least 60), then compare them.
    await carbon.waitFor(() => at('.zu.').size >= 60 && at('.zt.').size === at('.zu.').size, 5000, 'every twin line of the period');
    const zu = at('.zu.');
    const zt = at('.zt.');
    assert.ok(zu.size >= 60, `statsd twin lines: ${zu.size}`);
    assert.deepEqual(zt, zu);
    assert.equal(zt.get('stats.gauges.negative'), '-4');
    assert.equal(zt.get('stats.gauges.gauge'), '1.5');
    assert.equal(zt.get('stats.sets.users.count'), '3');
    assert.equal(zt.get('stats_counts.count'), '200');
  });

  test('passthrough: each item is written with its own timestamp, one an hour old, and survives a Carbon outage', async () => {
    const outagePort = await freePort();
    const d = await start('passthrough', [{ type: 'pull', mode: 'passthrough', prefix: 'pt.' }], outagePort);
    const now = Math.floor(Date.now() / 1000);
    const s = push(d.ports.zmq[0]!);
    await s.send(zlib([
      { name: 'web1.load', value: 0.75, time: now - 3600 },
      { name: 'web1.up', value: 1, time: now + 0.9 },
      { name: 'web1.req', value: 3, time: 1700000000.5, tags: { region: 'eu' } },
    ]));
    await s.send(plain({ name: 'web2.load', value: -1.5e-7, time: now - 60 }));
    await s.send('line.c:1|c'); // statsd lines carry no timestamp: aggregated, under the prefix
    // Carbon is down: the lines wait in the Redis outboxes (each in its shard's).
    const redis = client();
    try {
      const deadline = Date.now() + 5000;
      while ((await prefixOutboxText(prefix, redis)).split('\n').filter((l) => l.startsWith('pt.web')).length < 4) {
        assert.ok(Date.now() < deadline, 'passthrough lines in the outbox');
        await sleep(50);
      }
    } finally {
      redis.disconnect();
    }
    const late = new CarbonListener();
    await late.start(outagePort);
    try {
      await late.waitFor(() => late.series('pt.web2.load').length > 0 && late.sum('stats_counts.pt.line.c') === 1, 10_000, 'lines after the outage');
      const line = (name: string) => late.series(name).map((l) => `${l.name} ${l.value} ${l.ts}`);
      assert.deepEqual(line('pt.web1.load'), [`pt.web1.load 0.75 ${now - 3600}`]);
      assert.deepEqual(line('pt.web1.up'), [`pt.web1.up 1 ${now}`]);
      assert.deepEqual(line('pt.web1.req;region=eu'), ['pt.web1.req;region=eu 3 1700000000']);
      assert.deepEqual(line('pt.web2.load'), [`pt.web2.load -1.5e-7 ${now - 60}`]);
      assert.ok(!late.lines.some((l) => l.name.startsWith('stats.gauges.pt.web')), 'passthrough items are not aggregated');
    } finally {
      await late.stop();
    }
  });

  test('garbage among good messages: the good ones land, the bad ones are counted', async () => {
    const d = await start('garbage', [{ type: 'pull', maxMessageSize: 65536 }]);
    const s = push(d.ports.zmq[0]!);
    const good = (): Buffer => zlib([{ name: 'gb.c', value: 1, type: 'c' }]);
    const sequence: Frame[] = [
      good(),
      Buffer.from('8f00d3a1b2c3ff0102fe13', 'hex'), // binary: bad frame
      good(),
      Buffer.from([0x78, 0x9c, 0xff, 0x00, 0x13, 0x37]), // zlib header, garbage stream: bad frame
      good(),
      '[{"name": "gb.c", "value": 1', // not JSON: bad frame
      good(),
      plain([{ name: 'gb.bad', value: 'seven' }]), // non-numeric value: bad item, nothing else: bad frame
      plain({ value: 1, type: 'c' }), // missing name: bad item and bad frame
      plain([{ name: 'gb.c', value: 1, type: 'c' }, { name: 'gb.c', type: 'c' }]), // one good, one bad item
      deflateSync(Buffer.alloc(1024 * 1024, 0x20)), // inflates past maxMessageSize: oversized
      '', // empty: bad frame
      'hello world', // statsd text without a good line: a bad line and a bad frame
      good(),
    ];
    for (const f of sequence) await s.send(f);
    await carbon.waitFor(() => carbon.sum('stats_counts.gb.c') === 6, 5000, 'six good gb.c');
    await carbon.waitFor(() => carbon.sum('stats_counts.statsd.zmq_messages_received') === sequence.length, 3000, 'all messages counted');
    await sleep(200);
    assert.deepEqual(
      ['zmq_bad_frames', 'zmq_bad_items', 'zmq_oversized', 'bad_lines_seen'].map((n) => [n, carbon.sum(`stats_counts.statsd.${n}`)]),
      [['zmq_bad_frames', 7], ['zmq_bad_items', 3], ['zmq_oversized', 1], ['bad_lines_seen', 1]],
    );
    assert.ok(!carbon.lines.some((l) => l.name.includes('gb.bad')));
    // The console's stats shows this process's ZeroMQ counters too.
    const stats = await askConsole(d.ports.mgmt, 'stats');
    for (const [n, v] of [['zmq_messages_received', sequence.length], ['zmq_bad_frames', 7], ['zmq_bad_items', 3], ['zmq_oversized', 1], ['zmq_disconnects', 0]]) {
      assert.match(stats, new RegExp(`^tallyd\\.${n}: ${v}$`, 'm'));
    }
  });

  test("the README's Python publisher (python3 + python3-zmq) reaches Carbon through SUB, aggregated and passed through", async (t) => {
    const python = pythonWithZmq();
    if (python === null) {
      if (process.env.CI) assert.fail('python3 with zmq is missing (apt-get install python3-zmq)');
      t.skip('python3-zmq is not installed');
      return;
    }
    const d = await start('python', [{ type: 'sub' }, { type: 'sub', mode: 'passthrough', prefix: 'py.' }]);
    const run = (endpoint: string) => new Promise<number | null>((resolve, reject) => {
      const proc = spawn(python, [path.join(ROOT, 'examples', 'publisher.py'), endpoint, '0.1', '30'], { stdio: ['ignore', 'ignore', 'pipe'] });
      let err = '';
      proc.stderr.on('data', (b: Buffer) => (err += b.toString()));
      proc.on('error', reject);
      proc.on('exit', (code) => (code === 0 ? resolve(code) : reject(new Error(`publisher.py exited ${code}: ${err}`))));
    });
    const started = Date.now() / 1000;
    await Promise.all(d.ports.zmq.map(run));
    await carbon.waitFor(() => carbon.series('stats.gauges.interesting_metric').length > 0 && carbon.series('py.interesting_metric').length > 0,
      5000, 'interesting_metric from python');
    for (const l of [...carbon.series('stats.gauges.interesting_metric'), ...carbon.series('py.interesting_metric')]) {
      const v = Number(l.value);
      assert.ok(v >= 0 && v < 100, `${l.name} ${l.value}`);
      assert.ok(l.ts >= Math.floor(started) - 1 && l.ts <= Date.now() / 1000 + 1, `${l.name} at ${l.ts}`);
    }
    // Passthrough keeps each message: most of the 30 got past the slow joiner, each with its own second.
    assert.ok(carbon.series('py.interesting_metric').length >= 10, `${carbon.series('py.interesting_metric').length} passthrough lines`);
    assert.deepEqual([d.self.zmqBadFrames, d.self.zmqBadItems], [0, 0]);
  });

  test('StatusPublisher: PUSH publish() and start(collect) land exactly; PUB with a topic; the TypeScript example runs', async () => {
    const d = await start('publisher', [{ type: 'pull' }, { type: 'sub' }]);
    const pushPub = new StatusPublisher({ endpoint: d.ports.zmq[0]!, type: 'push', zlib: false });
    const pubPub = new StatusPublisher({ endpoint: d.ports.zmq[1]!, topic: 'node.app', sndHwm: 100_000 });
    try {
      pushPub.connect();
      pubPub.connect();
      for (let i = 0; i < 5; i++) await pushPub.publish([{ name: 'sp.push', value: 1, type: 'c' }, { name: 'sp.temp', value: 20 + i }]);
      let collected = 0;
      pushPub.start(() => (++collected <= 10 ? [{ name: 'sp.collected', value: 1, type: 'c' }] : []), 10);
      await joined(d, () => pubPub.publish([]));
      await pubPub.publish([{ name: 'sp.pub', value: 2, type: 'c', tags: ['via:pub'] }]);
      // The names sit in different shards, each flushed by its own leader: wait for each.
      await carbon.waitFor(() => carbon.sum('stats_counts.sp.collected') === 10 && carbon.sum('stats_counts.sp.pub;via=pub') === 2
        && carbon.sum('stats_counts.sp.push') >= 5 && carbon.series('stats.gauges.sp.temp').some((l) => l.value === '24'), 5000, 'the publishers\' counters');
      assert.equal(carbon.sum('stats_counts.sp.push'), 5);
      assert.ok(carbon.series('stats.gauges.sp.temp').some((l) => l.value === '24'));
    } finally {
      await Promise.all([pushPub.close(), pubPub.close()]);
    }

    const example = spawn(process.execPath, ['--import', 'tsx', path.join(ROOT, 'examples', 'publisher.ts'), d.ports.zmq[1]!, '100', '30'],
      { cwd: ROOT, stdio: ['ignore', 'ignore', 'pipe'] });
    let err = '';
    example.stderr.on('data', (b: Buffer) => (err += b.toString()));
    const code = await new Promise<number | null>((resolve) => example.on('exit', resolve));
    assert.equal(code, 0, err);
    await carbon.waitFor(() => carbon.series('stats.gauges.example.memory.rss').length > 0 && carbon.sum('stats_counts.example.requests;region=eu') > 0,
      5000, 'the example\'s metrics');
  });
});
