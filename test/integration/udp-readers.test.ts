/**
 * Both UDP readers, the native one (recvmmsg into one shared Buffer, many
 * datagrams per call into JavaScript) and node:dgram, receive the same
 * burst and Carbon gets the same exact totals: every datagram counted in
 * packets_received, bursts that arrive many per read, multi-line datagrams,
 * bad lines, and datagrams over maxPacketSize counted and dropped. The
 * native reader must exist under CI (npm install builds it; .ci/run has a
 * C compiler); elsewhere its test is skipped when it was not built.
 */
import assert from 'node:assert/strict';
import dgram from 'node:dgram';
import { after, afterEach, before, describe, test } from 'node:test';
import type { Daemon } from '../../src/daemon.js';
import { nativeAddon } from '../../src/native/addon.js';
import { alignToPeriod, CarbonListener } from '../helpers/carbon.js';
import { cleanup, testPrefix } from '../helpers/redis.js';
import { startDaemon, testConfig } from '../helpers/tallyd.js';

const FLUSH = 1000;
const native = nativeAddon();
const nativeMissing = typeof native === 'string' && !process.env.CI ? `native reader not available: ${native}` : false;

/** Sends every datagram without waiting between them (a burst), then waits for the last callback. */
async function burst(port: number, datagrams: readonly Buffer[]): Promise<void> {
  const s = dgram.createSocket('udp4');
  await new Promise<void>((resolve, reject) => {
    let left = datagrams.length;
    for (const d of datagrams) {
      s.send(d, port, '127.0.0.1', (err) => {
        if (err) reject(err);
        else if (--left === 0) resolve();
      });
    }
  });
  await new Promise<void>((r) => s.close(() => r()));
}

describe('udp readers: the same totals from native and node:dgram', () => {
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

  for (const reader of ['native', 'dgram'] as const) {
    test(`${reader}: a burst of 3,000 datagrams, multi-line ones, bad lines and oversized ones`, { skip: reader === 'native' && nativeMissing }, async () => {
      prefix = testPrefix(`udp-${reader}`);
      daemon = await startDaemon(
        testConfig(prefix, carbon.port, {
          flushInterval: FLUSH,
          servers: [{ server: 'udp', address: '127.0.0.1', port: 0, maxPacketSize: 512, udpReader: reader }],
        }),
      );
      assert.deepEqual(daemon.udpReaders, [reader]);
      const datagrams: Buffer[] = [];
      for (let i = 0; i < 2500; i++) datagrams.push(Buffer.from(`burst.one:1|c`));
      for (let i = 0; i < 400; i++) datagrams.push(Buffer.from(`burst.multi:2|c\nburst.ms:${i}|ms\nburst.bad:x|c\nburst.set:u${i % 50}|s`));
      for (let i = 0; i < 97; i++) datagrams.push(Buffer.from(`burst.g:${i}|g`));
      for (let i = 0; i < 3; i++) datagrams.push(Buffer.from(`burst.big:1|c\n${'x'.repeat(600)}`)); // 600+ bytes > maxPacketSize
      await alignToPeriod(FLUSH);
      await burst(daemon.ports.udp[0]!, datagrams);

      await carbon.waitFor(() => carbon.sum('stats_counts.statsd.packets_received') >= 3000, 6000, 'packets_received = 3000');
      await carbon.waitFor(() => carbon.sum('stats_counts.burst.one') === 2500, 3000, 'burst.one = 2500');
      // The other names sit in other shards, each delivered by its own shard's leader: wait for each to be in.
      await carbon.waitFor(() => carbon.sum('stats_counts.burst.multi') >= 800 && carbon.sum('stats.timers.burst.ms.count') >= 400
        && carbon.sum('stats_counts.statsd.bad_lines_seen') >= 400 && carbon.sum('stats_counts.statsd.oversized_packets') >= 3
        && carbon.series('stats.sets.burst.set.count').some((l) => l.value === '50') && carbon.series('stats.gauges.burst.g').some((l) => l.value === '96'),
      3000, 'every name of the burst').catch(() => undefined); // (the assertions below say which is missing)
      assert.equal(carbon.sum('stats_counts.statsd.packets_received'), 3000);
      assert.equal(carbon.sum('stats_counts.burst.multi'), 800);
      assert.equal(carbon.sum('stats.timers.burst.ms.count'), 400);
      assert.equal(carbon.sum('stats_counts.statsd.bad_lines_seen'), 400);
      assert.equal(carbon.sum('stats_counts.statsd.oversized_packets'), 3);
      assert.equal(carbon.sum('stats_counts.burst.big'), 0, 'an oversized datagram is not parsed');
      assert.ok(carbon.series('stats.sets.burst.set.count').some((l) => l.value === '50'));
      assert.ok(carbon.series('stats.gauges.burst.g').some((l) => l.value === '96'), 'the last gauge value wins');
    });
  }

  test('native: a datagram after a burst and a pause, and datagrams one by one, all arrive (the reader holds, then polls again)', { skip: nativeMissing }, async () => {
    prefix = testPrefix('udp-hold');
    daemon = await startDaemon(
      testConfig(prefix, carbon.port, { flushInterval: FLUSH, servers: [{ server: 'udp', address: '127.0.0.1', port: 0, udpReader: 'native' }] }),
    );
    assert.deepEqual(daemon.udpReaders, ['native']);
    const port = daemon.ports.udp[0]!;
    await alignToPeriod(FLUSH);
    // A burst leaves the reader holding (reading again 1 ms after a read that emptied the queue) ...
    await burst(port, Array.from({ length: 500 }, () => Buffer.from('hold.burst:1|c')));
    // ... an idle socket sends it back to polling; single datagrams, some right after another, some after a pause.
    await new Promise((r) => setTimeout(r, 100));
    const s = dgram.createSocket('udp4');
    for (let i = 0; i < 12; i++) {
      await new Promise<void>((resolve, reject) => s.send(Buffer.from('hold.one:1|c'), port, '127.0.0.1', (err) => (err ? reject(err) : resolve())));
      if (i % 3 === 2) await new Promise((r) => setTimeout(r, 40));
    }
    await new Promise<void>((r) => s.close(() => r()));
    await carbon.waitFor(() => carbon.sum('stats_counts.hold.one') === 12 && carbon.sum('stats_counts.hold.burst') === 500, 4000, 'hold.one = 12, hold.burst = 500');
    // Stopping right after a burst, while the reader holds, closes cleanly.
    await burst(port, Array.from({ length: 200 }, () => Buffer.from('hold.late:1|c')));
    await daemon.stop();
    daemon = null;
  });

  test('udpReader "native" without the native reader fails the start with the reason', { skip: typeof native !== 'string' ? 'the native reader is built here' : false }, async () => {
    prefix = testPrefix('udp-native-missing');
    await assert.rejects(
      startDaemon(testConfig(prefix, carbon.port, { servers: [{ server: 'udp', address: '127.0.0.1', port: 0, udpReader: 'native' }] })),
      /udpReader is "native" but the native reader is not available/,
    );
  });
});
