/**
 * Delivery to Carbon through faults, with a real daemon, a real Redis and
 * Carbon stand-ins in the test (issue 9): a Carbon that resets the
 * connection after reading N bytes, several times, and a Carbon that accepts
 * and never reads, left open, then a good one on the same port. Totals are
 * exact; every loss is counted in carbon_errors.
 */
import assert from 'node:assert/strict';
import net from 'node:net';
import { afterEach, describe, test } from 'node:test';
import type { Daemon } from '../../src/daemon.js';
import { CarbonListener, freePort, sleep, type CarbonLine } from '../helpers/carbon.js';
import { cleanup, testPrefix } from '../helpers/redis.js';
import { startDaemon, testConfig } from '../helpers/tallyd.js';

/** A Carbon that resets each of its first `resets` connections once it has read `afterBytes` bytes on it. */
class ResettingCarbon extends CarbonListener {
  resetsDone = 0;
  constructor(
    private readonly afterBytes: number,
    private readonly resets: number,
  ) {
    super();
  }

  override async start(port = 0): Promise<number> {
    const p = await super.start(port);
    const server = (this as unknown as { server: net.Server }).server;
    server.prependListener('connection', (sock: net.Socket) => {
      if (this.resetsDone >= this.resets) return;
      let read = 0;
      sock.on('data', (d: Buffer | string) => {
        read += d.length;
        if (read >= this.afterBytes && !sock.destroyed && this.resetsDone < this.resets) {
          this.resetsDone++;
          sock.resetAndDestroy();
        }
      });
    });
    return p;
  }
}

/** Sum of a counter over distinct (name, ts): re-sent lines (at least once) count once. */
function distinctSum(lines: readonly CarbonLine[], prefix: string): number {
  const seen = new Map<string, number>();
  for (const l of lines) if (l.name.startsWith(prefix)) seen.set(`${l.name} ${l.ts}`, Number(l.value));
  let sum = 0;
  for (const v of seen.values()) sum += v;
  return sum;
}

/** Steady counter traffic over TCP: `rounds` rounds of one increment per name, one round every `everyMs`. */
async function steadyTraffic(port: number, names: readonly string[], rounds: number, everyMs: number): Promise<number> {
  const sock = net.connect(port, '127.0.0.1');
  await new Promise<void>((r) => sock.once('connect', () => r()));
  const round = names.map((n) => `${n}:1|c\n`).join('');
  for (let i = 0; i < rounds; i++) {
    await new Promise<void>((r) => sock.write(round, () => r()));
    await sleep(everyMs); // pacing the traffic, not waiting for a result
  }
  await new Promise<void>((r) => sock.end(() => r()));
  return rounds * names.length;
}

async function waitUntil(pred: () => boolean | Promise<boolean>, timeoutMs: number, what: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await pred())) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(25);
  }
}

describe('carbon faults', () => {
  let daemon: Daemon | null = null;
  const carbons: CarbonListener[] = [];
  const extra: net.Server[] = [];
  let prefix = '';

  afterEach(async () => {
    await daemon?.stop();
    daemon = null;
    for (const c of carbons.splice(0)) await c.stop();
    for (const s of extra.splice(0)) await new Promise<void>((r) => s.close(() => r()));
    await cleanup(prefix);
  });

  test('a carbon that resets connections after reading 2 kB, six times: every increment arrives, each loss is counted', async () => {
    prefix = testPrefix('carbon-reset');
    // Each of the 16 shards delivers its own part of a period on its own connection: 800 names make ~60 kB of lines
    // per period, ~4 kB per shard, so a connection reset after 2 kB is reset in the middle of a delivery.
    const carbon = new ResettingCarbon(2_000, 6);
    carbons.push(carbon);
    await carbon.start();
    daemon = await startDaemon(testConfig(prefix, carbon.port, { carbonWriteTimeout: 5000 }));
    const names = Array.from({ length: 800 }, (_, i) => `reset.c${i}`);
    const sent = await steadyTraffic(daemon.ports.tcp[0] as number, names, 35, 100);
    assert.equal(sent, 28_000);
    await waitUntil(() => distinctSum(carbon.lines, 'stats_counts.reset.') === sent, 60_000, 'every increment at carbon');
    assert.equal(carbon.resetsDone, 6);
    const d = daemon;
    await waitUntil(() => d.self.carbonErrors >= 6, 5000, 'carbon_errors reported');
    assert.equal(d.self.carbonErrors, 6, 'one carbon_errors per reset');
    assert.equal(distinctSum(carbon.lines, 'stats_counts.reset.'), sent, 'nothing counted twice');
  });

  test('a carbon that accepts and never reads, left open, then a good one: nothing lost, the stall detected in time', async () => {
    prefix = testPrefix('carbon-stall');
    const port = await freePort();
    const stalled: net.Socket[] = [];
    let firstAcceptMs = 0;
    const bad = net.createServer((sock) => {
      firstAcceptMs ||= Date.now();
      sock.pause(); // never reads; the connection stays open
      stalled.push(sock);
    });
    extra.push(bad);
    await new Promise<void>((r) => bad.listen(port, '127.0.0.1', () => r()));
    const timeoutMs = 1500;
    daemon = await startDaemon(testConfig(prefix, port, { carbonWriteTimeout: timeoutMs }));
    const d = daemon;
    const names = Array.from({ length: 50 }, (_, i) => `stall.c${i}`);
    const traffic = steadyTraffic(d.ports.tcp[0] as number, names, 20, 100);
    await waitUntil(() => firstAcceptMs > 0, 10_000, 'a delivery to the stalled carbon');
    await waitUntil(() => d.self.carbonErrors >= 1, timeoutMs + 5000, 'the stall detected');
    // carbon_errors reaches the main thread with the flush thread's next report (every 500 ms).
    const detectedMs = Date.now() - firstAcceptMs;
    assert.ok(detectedMs <= timeoutMs + 1000, `stall detected after ${detectedMs} ms (carbonWriteTimeout ${timeoutMs})`);
    assert.ok(stalled.some((s) => !s.destroyed), 'the stalled connection is still open on carbon\'s side');
    // The stalled carbon stops listening (its connections stay open, so close()'s callback would wait for them); a good one takes the port.
    bad.close();
    extra.splice(0);
    const sent = await traffic;
    const good = new CarbonListener();
    carbons.push(good);
    await good.start(port);
    await waitUntil(() => distinctSum(good.lines, 'stats_counts.stall.') === sent, 30_000, 'every increment at the good carbon');
    assert.ok(d.self.carbonErrors >= 1);
    for (const s of stalled) s.destroy();
  });
});
