/**
 * udp_kernel_drops: the kernel really drops datagrams for tallyd (a tiny
 * receive buffer, a flood sent while tallyd's event loop is blocked), and the
 * counter rises by exactly what /proc/net/udp says for its socket, reaches
 * Redis as the statsd counter, and the console's stats shows it.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { afterEach, describe, test } from 'node:test';
import type { Daemon } from '../../src/daemon.js';
import { nativeAddon } from '../../src/native/addon.js';
import { CarbonListener, sleep } from '../helpers/carbon.js';
import { cleanup, counterSoFar, testPrefix } from '../helpers/redis.js';
import { startDaemon, testConfig } from '../helpers/tallyd.js';
import { floodWhileBlocked as floodUdp } from '../helpers/udp-flood.js';

const DATAGRAMS = 3000;

/** The drops column of /proc/net/udp for the rows on this local port (read independently of src/). */
function procDrops(port: number): number {
  let total = 0;
  for (const line of readFileSync('/proc/net/udp', 'utf8').split('\n').slice(1)) {
    const f = line.trim().split(/\s+/);
    if (f.length >= 13 && parseInt((f[1] as string).split(':')[1] as string, 16) === port) total += Number(f[12]);
  }
  return total;
}

async function waitFor(pred: () => boolean | Promise<boolean>, what: string, timeoutMs = 8000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await pred())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(50);
  }
}

/** Sends DATAGRAMS datagrams from a child process while this event loop is blocked. */
function floodWhileBlocked(port: number): void {
  floodUdp(port, DATAGRAMS, 'drops.flood:1|c');
}

const readers: Array<'dgram' | 'native'> = ['dgram'];
if (typeof nativeAddon() !== 'string') readers.push('native');

describe('udp_kernel_drops', () => {
  let daemon: Daemon | null = null;
  let prefix = '';

  const carbon = new CarbonListener();

  afterEach(async () => {
    await daemon?.stop();
    daemon = null;
    await carbon.stop();
    carbon.lines.length = 0;
    await cleanup(prefix);
  });

  for (const reader of readers) {
    test(`counts what the kernel dropped on the socket (${reader} reader), exactly as /proc/net/udp`, async (t) => {
      prefix = testPrefix(`udpdrops-${reader}`);
      await carbon.start();
      const total = (name: string) => counterSoFar(prefix, name, () => carbon.sum(`stats_counts.${name}`));
      daemon = await startDaemon(
        testConfig(prefix, carbon.port, {
          servers: [{ server: 'udp', address: '127.0.0.1', port: 0, recvBufferSize: 4096, udpReader: reader }],
          flushInterval: 60_000,
        }),
      );
      const d = daemon;
      assert.equal(d.udpReaders[0], reader);
      const port = d.ports.udp[0]!;
      const procBefore = procDrops(port);
      const selfBefore = d.self.udpKernelDrops;

      floodWhileBlocked(port);

      const dropped = procDrops(port) - procBefore;
      assert.ok(dropped > 0, `the kernel dropped datagrams (${dropped})`);
      t.diagnostic(`${reader}: ${DATAGRAMS} sent, ${dropped} dropped by the kernel`);
      await waitFor(() => d.self.udpKernelDrops - selfBefore === dropped, `udpKernelDrops to rise by ${dropped}`);
      await waitFor(() => d.self.packetsReceived === DATAGRAMS - dropped, 'every delivered datagram read');
      assert.equal(d.self.udpKernelDrops - selfBefore, procDrops(port) - procBefore, 'no more drops since');

      await waitFor(async () => (await total('statsd.udp_kernel_drops')) === dropped, 'statsd.udp_kernel_drops merged');
      await waitFor(async () => (await total('drops.flood')) === DATAGRAMS - dropped, 'received + dropped = sent');
    });
  }
});
