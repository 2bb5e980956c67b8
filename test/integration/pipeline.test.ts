/**
 * statsd clients into tallyd, tallyd into a Carbon listener, the real Redis
 * between them: hot-shots over UDP and TCP (tags, buffered multi-metric
 * packets), bad lines among good ones, and one merge per batch, not per sample.
 */
import assert from 'node:assert/strict';
import dgram from 'node:dgram';
import { after, afterEach, before, describe, test } from 'node:test';
import StatsD, { type StatsD as StatsDClient } from 'hot-shots';
import type { Daemon } from '../../src/daemon.js';
import { alignToPeriod, CarbonListener, sendUdp } from '../helpers/carbon.js';
import { cleanup, testPrefix } from '../helpers/redis.js';
import { startDaemon, testConfig } from '../helpers/tallyd.js';

const FLUSH = 1000;

function closeClient(c: StatsDClient): Promise<void> {
  return new Promise((resolve) => c.close(() => resolve()));
}

describe('statsd ingest to Carbon', () => {
  let carbon: CarbonListener;
  let daemon: Daemon | null = null;
  let prefix = '';

  before(async () => {
    carbon = new CarbonListener();
    await carbon.start();
  });
  after(async () => {
    await carbon.stop();
  });
  afterEach(async () => {
    await daemon?.stop();
    daemon = null;
    await cleanup(prefix);
    carbon.lines.length = 0;
  });

  for (const protocol of ['udp', 'tcp'] as const) {
    test(`hot-shots over ${protocol}: every type, with tags, lands in one period stamped with its boundary`, async () => {
      prefix = testPrefix(`pipeline-${protocol}`);
      daemon = await startDaemon(testConfig(prefix, carbon.port, { flushInterval: FLUSH }));
      const port = protocol === 'udp' ? daemon.ports.udp[0] : daemon.ports.tcp[0];
      const client = new StatsD({ host: '127.0.0.1', port, protocol, errorHandler: (e) => assert.fail(e) });
      await alignToPeriod(FLUSH);
      for (let i = 1; i <= 100; i++) {
        client.increment('app.requests', 1, { route: 'home' });
        client.timing('app.latency', i);
        client.set('app.users', `u${i % 10}`);
      }
      client.gauge('app.temperature', 21.5);
      client.histogram('app.size', 7);
      client.distribution('app.size', 9);
      await closeClient(client);

      await carbon.waitFor(() => carbon.series('stats.timers.app.latency.count').some((l) => l.value === '100'), 5000, 'timer count 100');
      // The names sit in different shards, each delivered by its own shard's leader.
      await carbon.waitForEach(['stats_counts.app.requests;route=home', 'stats.app.requests;route=home', 'stats.timers.app.latency.upper',
        'stats.timers.app.size.count', 'stats.gauges.app.temperature', 'stats.sets.app.users.count'], 5000, (l) => l.value !== '0');
      const at = (name: string) => {
        const s = carbon.series(name).filter((l) => l.value !== '0');
        assert.equal(s.length, 1, `${name}: one non-zero point, got ${JSON.stringify(carbon.series(name))}`);
        return s[0]!;
      };
      const counts = at('stats_counts.app.requests;route=home');
      assert.equal(counts.value, '100');
      assert.equal(at('stats.app.requests;route=home').value, '100'); // rate per second at flushInterval 1 s
      assert.equal(at('stats.timers.app.latency.upper').value, '100');
      assert.equal(at('stats.timers.app.latency.lower').value, '1');
      assert.equal(at('stats.timers.app.latency.mean').value, '50.5');
      assert.equal(at('stats.timers.app.latency.upper_90').value, '90');
      assert.equal(at('stats.timers.app.latency.median').value, '50.5');
      assert.equal(at('stats.timers.app.size.count').value, '2'); // h and d are timers
      assert.equal(at('stats.gauges.app.temperature').value, '21.5');
      assert.equal(at('stats.sets.app.users.count').value, '10');
      // The timestamp is the period's boundary: a multiple of flushInterval, shared by all its lines.
      assert.equal((counts.ts * 1000) % FLUSH, 0);
      for (const name of ['stats.timers.app.latency.count', 'stats.sets.app.users.count', 'stats.gauges.app.temperature']) {
        assert.equal(at(name).ts, counts.ts, name);
      }
      assert.ok(daemon.self.batchesMerged < 30, `merges are per batch, not per sample (${daemon.self.batchesMerged})`);
    });
  }

  test('hot-shots buffered mode: many metrics per packet, all counted', async () => {
    prefix = testPrefix('pipeline-buffered');
    daemon = await startDaemon(testConfig(prefix, carbon.port, { flushInterval: FLUSH }));
    const client = new StatsD({ host: '127.0.0.1', port: daemon.ports.udp[0], maxBufferSize: 1400, bufferFlushInterval: 50 });
    for (let i = 0; i < 5000; i++) client.increment(`buf.c${i % 50}`, 1);
    await closeClient(client);
    await carbon.waitFor(() => sumOver('stats_counts.buf.c', 50) === 5000, 8000, 'all 5000 increments');
    // statsd's own counters come with shard 0's delivery, which may follow the others'.
    await carbon.waitFor(() => carbon.sum('stats_counts.statsd.metrics_received') === 5000, 5000, 'metrics_received 5000');
    for (let i = 0; i < 50; i++) assert.equal(carbon.sum(`stats_counts.buf.c${i}`), 100);
    const packets = carbon.sum('stats_counts.statsd.packets_received');
    assert.ok(packets < 5000 / 10, `buffered: far fewer packets than metrics (${packets})`);
    assert.equal(carbon.sum('stats_counts.statsd.metrics_received'), 5000);
  });

  function sumOver(stem: string, n: number): number {
    let s = 0;
    for (let i = 0; i < n; i++) s += carbon.sum(`${stem}${i}`);
    return s;
  }

  test('bad lines are counted and skipped; the good lines of the same packet still land', async () => {
    prefix = testPrefix('pipeline-bad');
    daemon = await startDaemon(testConfig(prefix, carbon.port, { flushInterval: FLUSH }));
    const sock = dgram.createSocket('udp4');
    const packet = ['good.a:1|c', 'good.sampled:1|c|@0.25', 'nocolon', 'bad.value:abc|c', 'good.b:2|c', 'bad.type:1|x', 'bad.rate:1|c|@0', 'good.a:3|c', ''].join('\n');
    await new Promise<void>((r) => sock.send(packet, daemon!.ports.udp[0], '127.0.0.1', () => r()));
    sock.close();
    // Names on different shards arrive in their shards' own deliveries: each is waited for.
    await carbon.waitFor(() => carbon.sum('stats_counts.good.a') === 4, 5000, 'good.a = 4');
    // good.b and good.sampled may sit in other shards, delivered by their own shard's leader.
    await carbon.waitForEach(['stats_counts.good.b', 'stats_counts.good.sampled'], 5000, (l) => l.value !== '0');
    assert.equal(carbon.sum('stats_counts.good.b'), 2);
    assert.equal(carbon.sum('stats_counts.good.sampled'), 4);
    await carbon.waitFor(() => carbon.sum('stats_counts.statsd.bad_lines_seen') === 4, 3000, 'bad_lines_seen = 4');
    assert.equal(carbon.sum('stats_counts.statsd.metrics_received'), 8);
    assert.ok(!carbon.lines.some((l) => l.name.includes('bad.')), 'no metric from a bad line');
  });

  test('oversized datagrams are counted as statsd.oversized_packets, not parsed', async () => {
    prefix = testPrefix('pipeline-oversized');
    daemon = await startDaemon(
      testConfig(prefix, carbon.port, {
        flushInterval: FLUSH,
        servers: [{ server: 'udp', address: '127.0.0.1', port: 0, maxPacketSize: 64 }],
      }),
    );
    const big = Array.from({ length: 10 }, () => 'big.lines:1|c').join('\n');
    await sendUdp(daemon.ports.udp[0]!, [big, 'small.line:1|c']);
    await carbon.waitFor(() => carbon.sum('stats_counts.statsd.oversized_packets') === 1, 5000, 'oversized_packets = 1');
    await carbon.waitForEach(['stats_counts.small.line'], 5000, (l) => l.value !== '0');
    assert.equal(carbon.sum('stats_counts.small.line'), 1);
    assert.equal(carbon.sum('stats_counts.big.lines'), 0);
  });
});

describe('no value that is not finite reaches Carbon', () => {
  let carbon: CarbonListener;
  let daemon: Daemon | null = null;
  let prefix = '';
  before(async () => {
    carbon = new CarbonListener();
    await carbon.start();
  });
  after(async () => {
    await daemon?.stop();
    await cleanup(prefix);
    await carbon.stop();
  });

  test('overflowing counters print Infinity as statsd does; gauges and timer sums clamp; @1e-320 is a bad line', async () => {
    const flushMs = 3000;
    prefix = testPrefix('pipeline-nonfinite');
    daemon = await startDaemon(testConfig(prefix, carbon.port, { flushInterval: flushMs }));
    const port = daemon.ports.udp[0]!;
    const self = daemon.self;
    // Three waves, each merged (through mergeBatch-11.lua) before the next is sent, all in one period.
    const waves = [
      ['stick:1e308|c', 'neg:-1e308|c', 'loc:1e308|c\nloc:1e308|c', 'g.neg:-1e308|g', 'g.loc:-1e308|g\ng.loc:-1e308|g', 't.big:1e200|ms', 'h.mix:1e308|h', 'r.tiny:1|c|@1e-320'],
      ['stick:1e308|c', 'neg:-1e308|c', 'g.neg:-1e308|g', 'h.mix:-1e308|h\nh.mix:-1e308|h'],
      ['stick:-1e308|c\nstick:-1e308|c', 'g.neg:+5|g', 'h.mix:1e308|h'],
    ];
    await alignToPeriod(flushMs);
    for (const wave of waves) {
      const merged = self.batchesMerged;
      await sendUdp(port, wave);
      await carbon.waitFor(() => self.batchesMerged > merged, 2000, 'the wave merged');
    }
    // statsd: counters[key] += ... reaches Infinity and stays; graphite.js prints it as `Infinity` (rate and count).
    const infinite: Record<string, string> = {
      'stats.stick': 'Infinity', 'stats_counts.stick': 'Infinity',
      'stats.neg': '-Infinity', 'stats_counts.neg': '-Infinity',
      'stats.loc': 'Infinity', 'stats_counts.loc': 'Infinity',
    };
    // The names sit in different shards, each delivered with its shard's period: wait for every one of them.
    const names = [...Object.keys(infinite), 'stats.gauges.g.neg', 'stats.gauges.g.loc', 'stats.timers.t.big.sum_squares', 'stats.timers.t.big.sum',
      'stats.timers.h.mix.count'];
    await carbon.waitFor(() => names.every((n) => carbon.series(n).length > 0) && carbon.sum('stats_counts.statsd.bad_lines_seen') > 0, 8000,
      'the period at Carbon');
    const ts = carbon.series('stats_counts.stick')[0]!.ts;
    const value = (name: string) => {
      const s = carbon.series(name).filter((l) => l.ts === ts);
      assert.equal(s.length, 1, `${name}: ${JSON.stringify(carbon.series(name))}`);
      return s[0]!.value;
    };
    for (const [name, v] of Object.entries(infinite)) assert.equal(value(name), v, name);
    assert.equal(value('stats.gauges.g.neg'), String(-Number.MAX_VALUE));
    assert.equal(value('stats.gauges.g.loc'), String(-Number.MAX_VALUE));
    assert.equal(value('stats.timers.t.big.sum_squares'), String(Number.MAX_VALUE));
    assert.equal(value('stats.timers.t.big.sum'), '1e+200');
    assert.equal(value('stats.timers.h.mix.count'), '4');
    assert.ok(!carbon.lines.some((l) => l.name.includes('r.tiny')), 'a rate whose inverse is not finite is a bad line');
    assert.equal(carbon.sum('stats_counts.statsd.bad_lines_seen'), 1);
    for (const l of carbon.lines) {
      if (infinite[l.name] !== undefined) continue;
      assert.ok(Number.isFinite(Number(l.value)), `${l.name} ${l.value}`);
    }
  });
});
