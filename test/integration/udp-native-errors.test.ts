/**
 * The native UDP reader's error paths, for real:
 * - a socket error (an ICMP port unreachable raises POLLERR; libuv stops the
 *   poll) is cleared, counted in udp_socket_errors, and ingest goes on: every
 *   datagram sent afterwards is counted;
 * - under a stream, where the reader holds its reads and a read meets the
 *   error first (recvmmsg returns it), an error is still counted once, also
 *   when it sits in the error queue too (IP_RECVERR) and would raise POLLERR
 *   after the read (it was counted twice: CI saw 3 for 2);
 * - when the reader cannot poll again (TALLYD_NATIVE_FAULT=poll-restart
 *   makes uv_poll_start refuse) it says so: logged, health down, counted;
 * - open() failing after libuv took its handles (TALLYD_NATIVE_FAULT at each
 *   late step) releases the socket: no UDP socket descriptor left behind,
 *   the port free again;
 * - a process or a worker thread that ends with readers still open (never
 *   started, polling, holding, dropped) exits cleanly: the readers close
 *   before Node tears the environment down and unloads the addon (it used
 *   to crash with SIGSEGV).
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { after, afterEach, before, describe, test } from 'node:test';
import type { Daemon } from '../../src/daemon.js';
import { nativeAddon } from '../../src/native/addon.js';
import { alignToPeriod, CarbonListener, freeUdpPort, sendUdp, sleep } from '../helpers/carbon.js';
import { cleanup, testPrefix } from '../helpers/redis.js';
import { SteadySender, waitUntil } from '../helpers/steady-traffic.js';
import { startDaemon, testConfig } from '../helpers/tallyd.js';
import { udpFdCount, provokeSocketError, udpSocketFd } from '../helpers/udp-socket-error.js';

const FLUSH = 1000;
const native = nativeAddon();
const nativeMissing = typeof native === 'string' && !process.env.CI ? `native reader not available: ${native}` : false;

async function until(what: string, pred: () => boolean, timeoutMs = 5000): Promise<void> {
  assert.ok(await waitUntil(pred, timeoutMs), `timed out waiting for ${what}`);
}

describe('native udp reader: error paths', { skip: nativeMissing }, () => {
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
    delete process.env.TALLYD_NATIVE_FAULT;
    await daemon?.stop();
    daemon = null;
    await cleanup(prefix);
    carbon.lines.length = 0;
  });

  for (const keepErrQueue of [false, true]) {
    const what = keepErrQueue ? 'SO_ERROR and an error-queue entry (IP_RECVERR)' : 'SO_ERROR';
    test(`a real socket error (${what}) is cleared and counted, and every datagram sent after it is read`, async () => {
      prefix = testPrefix('udp-sockerr');
      daemon = await startDaemon(
        testConfig(prefix, carbon.port, { flushInterval: FLUSH, servers: [{ server: 'udp', address: '127.0.0.1', port: 0, udpReader: 'native' }] }),
      );
      assert.deepEqual(daemon.udpReaders, ['native']);
      const d = daemon;
      const port = d.ports.udp[0]!;
      await alignToPeriod(FLUSH);
      await sendUdp(port, Array.from({ length: 50 }, () => 'before.err:1|c'));
      await until('50 datagrams before the error', () => d.self.packetsReceived === 50);

      await provokeSocketError(udpSocketFd(port), keepErrQueue);
      await until('the socket error counted', () => d.self.udpSocketErrors >= 1);
      // Ingest goes on: a burst and single datagrams after the error all arrive.
      await sendUdp(port, Array.from({ length: 500 }, () => 'after.err:1|c'));
      await until('550 datagrams in all', () => d.self.packetsReceived === 550);
      await provokeSocketError(udpSocketFd(port), keepErrQueue);
      await until('the second socket error counted', () => d.self.udpSocketErrors >= 2);
      await sendUdp(port, Array.from({ length: 20 }, () => 'after.err:1|c'));

      await carbon.waitFor(() => carbon.sum('stats_counts.after.err') === 520, 6000, 'after.err = 520');
      await carbon.waitFor(() => carbon.sum('stats_counts.statsd.udp_socket_errors') >= 2, 6000, 'udp_socket_errors = 2');
      assert.equal(carbon.sum('stats_counts.statsd.udp_socket_errors'), 2, 'one count per error in Carbon');
      // Another shard's outbox (before.err and after.err hash apart): its delivery need not come first.
      await carbon.waitFor(() => carbon.sum('stats_counts.before.err') === 50, 6000, 'before.err = 50');
      assert.equal(d.self.udpSocketErrors, 2, 'one count per error, none for the clearing');
      assert.equal(d.self.udpReadersStopped, 0);
      const health = await d.health!.report();
      assert.equal(health.losses.udp_socket_errors, 2);
      assert.ok(!health.reasons.some((r) => r.includes('udp reader')), health.reasons.join('; '));
    });
  }

  for (const keepErrQueue of [false, true]) {
    const what = keepErrQueue ? 'SO_ERROR and an error-queue entry' : 'SO_ERROR';
    test(`under a stream (the reader holding its reads), each socket error (${what}) counts once and no datagram is lost`, async () => {
      prefix = testPrefix('udp-sockerr-stream');
      daemon = await startDaemon(
        testConfig(prefix, carbon.port, { flushInterval: FLUSH, servers: [{ server: 'udp', address: '127.0.0.1', port: 0, udpReader: 'native' }] }),
      );
      const d = daemon;
      const port = d.ports.udp[0]!;
      // A read that meets the error (recvmmsg returns it, clearing SO_ERROR) while an error-queue entry of the same
      // error is still there (IP_RECVERR) must not count the entry again when it raises POLLERR next.
      const sender = new SteadySender({ port, name: 'stream.err', everyMs: 2, datagramsPerTick: 4, incrementsPerDatagram: 1 });
      await sender.start();
      const fd = udpSocketFd(port);
      const errors = 12;
      try {
        for (let i = 1; i <= errors; i++) {
          await provokeSocketError(fd, keepErrQueue);
          await until(`socket error ${i} counted`, () => d.self.udpSocketErrors >= i);
          await sleep(30);
        }
      } finally {
        await sender.close();
      }
      await sleep(200);
      assert.equal(d.self.udpSocketErrors, errors, 'one count per error');
      await until(`all ${sender.total} datagrams read`, () => d.self.packetsReceived === sender.total, 10_000);
      await carbon.waitFor(() => carbon.sum('stats_counts.stream.err') === sender.total, 10_000, `stream.err = ${sender.total}`);
      await carbon.waitFor(() => carbon.sum('stats_counts.statsd.udp_socket_errors') >= errors, 10_000, `udp_socket_errors = ${errors}`);
      assert.equal(carbon.sum('stats_counts.statsd.udp_socket_errors'), errors);
    });
  }

  test('a reader that cannot poll again after a socket error says so: counted, health down, and it still stops cleanly', async () => {
    prefix = testPrefix('udp-sockerr-stop');
    process.env.TALLYD_NATIVE_FAULT = 'poll-restart'; // read by open(): uv_poll_start refuses after the error
    daemon = await startDaemon(
      testConfig(prefix, carbon.port, { flushInterval: FLUSH, servers: [{ server: 'udp', address: '127.0.0.1', port: 0, udpReader: 'native' }] }),
    );
    delete process.env.TALLYD_NATIVE_FAULT;
    const d = daemon;
    const port = d.ports.udp[0]!;
    await provokeSocketError(udpSocketFd(port), false);
    await until('the reader stopped', () => d.self.udpReadersStopped === 1);
    assert.equal(d.self.udpSocketErrors, 1);
    const health = await d.health!.report();
    assert.equal(health.status, 'down');
    assert.ok(health.reasons.includes('1 udp reader(s) stopped after a socket error they could not clear (see the log); restart tallyd'), health.reasons.join('; '));
    await d.stop();
    daemon = null;
    assert.equal(d.self.udpReadersStopped, 0, 'a stopped server no longer counts as a stopped reader');
  });

  test('open() failing after each late step releases the socket and its handles: no udp socket left, the port free', async () => {
    prefix = '';
    const lib = native as Exclude<typeof native, string>;
    const port = await freeUdpPort();
    const buf = Buffer.alloc(512 * 4);
    const lengths = new Int32Array(4);
    const before = udpFdCount();
    for (const fault of ['open-after-poll-init', 'open-after-timer-init', 'open-after-refs', 'open-after-external']) {
      process.env.TALLYD_NATIVE_FAULT = fault;
      for (let i = 0; i < 50; i++) {
        assert.throws(() => lib.open(4, '127.0.0.1', port, 0, false, buf, 512, lengths, () => undefined), { code: 'EINTERNAL' }, fault);
        // The socket is closed once libuv has closed its handles (the loop's close phase): wait for that.
        await until(`${fault}: udp sockets back to ${before}`, () => udpFdCount() === before, 2000);
      }
    }
    delete process.env.TALLYD_NATIVE_FAULT;
    // The port was released every time: a real open binds it, reads, and closes.
    let got = 0;
    const sock = lib.open(4, '127.0.0.1', port, 1 << 20, false, buf, 512, lengths, (n, kind) => {
      if (kind === 0 && n > 0) got += n;
    });
    assert.deepEqual({ port: sock.port, slots: sock.slots }, { port, slots: 4 });
    assert.ok(sock.rcvbuf >= 1 << 16, `SO_RCVBUF read back: ${sock.rcvbuf}`);
    lib.start(sock.handle, 0);
    await sendUdp(port, ['a:1|c', 'b:1|c', 'c:1|c']);
    await until('3 datagrams read', () => got === 3);
    lib.close(sock.handle);
    await until(`udp sockets back to ${before} after a clean close`, () => udpFdCount() === before, 2000);
  });

  test('a process and a worker thread that end with readers open exit cleanly (no crash at teardown)', () => {
    prefix = '';
    const addon = process.env.TALLYD_NATIVE_ADDON || path.resolve(import.meta.dirname, '../../build/Release/tallyd_native.node');
    // Readers never started, polling, holding, closed and dropped; then the thread or the process ends on its own.
    const readers = `
      const lib = require(${JSON.stringify(addon)});
      const buf = Buffer.allocUnsafeSlow(4096), lengths = new Int32Array(8);
      const keep = [];
      for (let i = 0; i < 8; i++) {
        const r = lib.open(4, '127.0.0.1', 0, 0, false, buf, 512, lengths, () => undefined);
        if (i % 4 === 1) lib.start(r.handle, 0);
        if (i % 4 === 2) lib.start(r.handle, 1);
        if (i % 4 === 3) lib.close(r.handle);
        if (i % 2 === 0) keep.push(r);
      }
      globalThis.gc?.();
    `;
    const inWorker = `
      const { Worker } = require('node:worker_threads');
      (async () => {
        for (let i = 0; i < 5; i++) {
          const w = new Worker(${JSON.stringify(`${readers}; require('node:worker_threads').parentPort.postMessage('open');`)}, { eval: true });
          await new Promise((resolve) => w.once('message', resolve));
          await w.terminate();
        }
      })();
    `;
    // Only readers never started (a polling one keeps the process alive, as a bound socket does) in the process itself.
    const inProcess = readers.replace(/lib\.start\(r\.handle, [01]\);/g, '');
    for (const [what, code] of [['a process', inProcess], ['worker threads', inWorker]] as const) {
      const res = spawnSync(process.execPath, ['--expose-gc', '-e', code], { encoding: 'utf8', timeout: 20_000 });
      assert.equal(res.signal, null, `${what}: killed by ${res.signal}; stderr: ${res.stderr}`);
      assert.equal(res.status, 0, `${what}: exit ${res.status}; stderr: ${res.stderr}`);
    }
  });
});
