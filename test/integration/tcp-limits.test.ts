/**
 * TCP ingest bounds with real sockets: maxConnections per server (excess
 * closed at once, counted as tcp_connections_refused) and tcpIdleTimeout
 * (a silent connection is closed, counted as tcp_idle_closed). Every wait is
 * on a condition; the idle timeout is driven by a short configured value.
 */
import assert from 'node:assert/strict';
import net from 'node:net';
import { after, describe, test } from 'node:test';
import type { Daemon } from '../../src/daemon.js';
import { CarbonListener } from '../helpers/carbon.js';
import { cleanup, counterSoFar, testPrefix } from '../helpers/redis.js';
import { startDaemon, testConfig } from '../helpers/tallyd.js';

async function until(pred: () => boolean | Promise<boolean>, what: string, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await pred())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

interface Client {
  sock: net.Socket;
  closed: boolean;
}

function connect(port: number): Promise<Client> {
  return new Promise((resolve, reject) => {
    const c: Client = { sock: net.createConnection(port, '127.0.0.1'), closed: false };
    c.sock.on('close', () => (c.closed = true));
    c.sock.on('error', () => undefined);
    c.sock.once('connect', () => resolve(c));
    c.sock.once('error', reject);
  });
}

describe('tcp limits', () => {
  const prefixes: string[] = [];
  const daemons: Daemon[] = [];
  const clients: Client[] = [];
  const carbons: CarbonListener[] = [];
  /** A counter's total so far in the daemon started last (published + open). */
  let total: (name: string) => Promise<number> = () => Promise.resolve(0);
  async function start(extra: Record<string, unknown>): Promise<{ daemon: Daemon; prefix: string; port: number }> {
    const prefix = testPrefix('tcp-limits');
    prefixes.push(prefix);
    const carbon = new CarbonListener();
    carbons.push(carbon);
    await carbon.start();
    const daemon = await startDaemon(testConfig(prefix, carbon.port, { flushInterval: 60_000, ...extra }));
    total = (name: string) => counterSoFar(prefix, name, () => carbon.sum(`stats_counts.${name}`));
    daemons.push(daemon);
    return { daemon, prefix, port: daemon.ports.tcp[0]! };
  }
  after(async () => {
    for (const c of clients) c.sock.destroy();
    for (const d of daemons) await d.stop();
    for (const c of carbons) await c.stop();
    for (const p of prefixes) await cleanup(p);
  });

  test('maxConnections: the connections past the cap are closed at once and counted', async () => {
    const { daemon, port } = await start({ maxConnections: 3, tcpIdleTimeout: 60_000 });
    for (let i = 0; i < 3; i++) {
      const c = await connect(port);
      clients.push(c);
      c.sock.write('cap.ok:1|c\n');
    }
    // All three were accepted: each line was parsed and merged.
    await until(async () => (await total('cap.ok')) === 3, 'the three accepted connections\' lines');
    const extra = await connect(port);
    clients.push(extra);
    extra.sock.write('cap.refused:1|c\n');
    await until(() => extra.closed, 'the fourth connection to be closed');
    assert.equal(daemon.self.tcpConnectionsRefused, 1);
    assert.ok(clients.slice(0, 3).every((c) => !c.closed), 'the accepted connections stay open');
    // Emitted as a statsd counter like the other self-metrics.
    await until(async () => (await total('statsd.tcp_connections_refused')) === 1, 'statsd.tcp_connections_refused');
    assert.equal(await total('cap.refused'), 0);
  });

  test('tcpIdleTimeout: a silent connection is closed and counted; one that sends stays open', async () => {
    const { daemon, port } = await start({ tcpIdleTimeout: 200 });
    const silent = await connect(port);
    const busy = await connect(port);
    clients.push(silent, busy);
    silent.sock.write('idle.partial:1|c'); // an unterminated line, then nothing
    const t0 = Date.now();
    const tick = setInterval(() => busy.sock.write('idle.busy:1|c\n'), 50);
    try {
      await until(() => silent.closed, 'the silent connection to be closed');
      assert.ok(Date.now() - t0 >= 150, 'not closed before tcpIdleTimeout');
      assert.equal(daemon.self.tcpIdleClosed, 1);
      // The busy one outlives several timeouts while it keeps sending.
      const seen = Date.now();
      await until(() => Date.now() - seen > 600 || busy.closed, 'three idle timeouts to pass');
      assert.equal(busy.closed, false);
    } finally {
      clearInterval(tick);
    }
    await until(() => busy.closed, 'the busy connection to be closed once it stops sending');
    assert.equal(daemon.self.tcpIdleClosed, 2);
    // The silent one's unterminated line is handed up as on a client's own close; the count is emitted.
    await until(async () => (await total('idle.partial')) === 1, 'the partial line');
    await until(async () => (await total('statsd.tcp_idle_closed')) === 2, 'statsd.tcp_idle_closed');
  });
});
