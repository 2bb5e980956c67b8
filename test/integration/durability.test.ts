/**
 * What the Redis state buys: a kill -9 after the batches were merged loses
 * nothing; SIGTERM merges the last in-memory batch before exit; Carbon being
 * unreachable for three periods delays their lines but keeps each period's
 * own timestamp; two processes on one prefix flush each period once. On the
 * default of 16 shards: each name is read from its own shard, the outbox
 * from every shard's, and the two processes share the shards' leases.
 */
import assert from 'node:assert/strict';
import { afterEach, describe, test } from 'node:test';
import { alignToPeriod, CarbonListener, freePort, freeUdpPort, sendUdp, sleep } from '../helpers/carbon.js';
import { leaseHolders, shardsByHolder, tokenOf, waitHolders } from '../helpers/lease.js';
import { prefixOutboxText } from '../helpers/outbox.js';
import { udpSocketStats } from '../helpers/proc-udp.js';
import { cleanup, openCounter, REDIS_URL, testPrefix } from '../helpers/redis.js';
import { spawnTallyd, testConfig, waitForOutput, type ChildTallyd } from '../helpers/tallyd.js';

const UP = 'tallyd is up';

function childConfig(prefix: string, carbonPort: number, udpPort: number, extra: Record<string, unknown> = {}) {
  return testConfig(prefix, carbonPort, {
    servers: [{ server: 'udp', address: '127.0.0.1', port: udpPort }],
    log: { level: 'info' },
    ...extra,
  });
}

const curCounter = openCounter;

function counterLines(n: number, name: string): string[] {
  return Array.from({ length: n }, () => `${name}:1|c`);
}

/**
 * Waits until Carbon has a line of `name` for a period after `afterTs` (the
 * re-emitted 0 of an idle counter): tallyd has published the periods up to
 * `afterTs` and moved on, so a second copy of them would have arrived by now.
 */
function waitPublishedAfter(carbon: CarbonListener, name: string, afterTs: number, timeoutMs: number): Promise<void> {
  return carbon.waitFor(() => carbon.series(name).some((l) => l.ts > afterTs), timeoutMs, `a ${name} line after ${afterTs}`);
}

/** The Graphite text committed to the prefix's outboxes (every shard's) so far. */
const outboxText = (prefix: string): Promise<string> => prefixOutboxText(prefix);

describe('durability', () => {
  const children: ChildTallyd[] = [];
  const listeners: CarbonListener[] = [];
  let prefix = '';

  afterEach(async () => {
    for (const c of children.splice(0)) {
      if (c.proc.exitCode === null && c.proc.signalCode === null) {
        c.proc.kill('SIGKILL');
        await c.exited;
      }
    }
    for (const l of listeners.splice(0)) await l.stop();
    await cleanup(prefix);
  });

  test('kill -9 after the batches were merged, restart: the counts arrive complete, once', async () => {
    prefix = testPrefix('kill9');
    const carbon = new CarbonListener();
    listeners.push(carbon);
    await carbon.start();
    const udp = await freeUdpPort();
    const cfg = childConfig(prefix, carbon.port, udp, { flushInterval: 4000 });
    const first = spawnTallyd(cfg);
    children.push(first);
    await waitForOutput(first, UP);
    await alignToPeriod(4000, 200);
    await sendUdp(udp, counterLines(500, 'durable.hits'));
    const deadline = Date.now() + 2500;
    while ((await curCounter(prefix, 'durable.hits')) < 500) {
      assert.ok(Date.now() < deadline, 'batches merged into redis');
      await sleep(20);
    }
    first.proc.kill('SIGKILL');
    assert.equal(await first.exited, 'SIGKILL');
    assert.equal(carbon.sum('stats_counts.durable.hits'), 0, 'killed before its flush');

    const second = spawnTallyd(cfg);
    children.push(second);
    await waitForOutput(second, UP);
    await carbon.waitFor(() => carbon.sum('stats_counts.durable.hits') >= 500, 15_000, 'the 500 hits after restart');
    const hitTs = Math.max(...carbon.series('stats_counts.durable.hits').filter((l) => l.value !== '0').map((l) => l.ts));
    await waitPublishedAfter(carbon, 'stats_counts.durable.hits', hitTs, 15_000);
    assert.equal(carbon.sum('stats_counts.durable.hits'), 500);
    assert.equal(carbon.series('stats_counts.durable.hits').filter((l) => l.value !== '0').length, 1, 'one period, one line');
  });

  test('SIGTERM merges the last batch into redis and exits 0; the unfinished period waits there for the next tallyd', async () => {
    prefix = testPrefix('sigterm');
    const udp = await freeUdpPort();
    const carbon = new CarbonListener();
    listeners.push(carbon);
    await carbon.start();
    // A batch interval longer than the test's send so the samples are only in memory at SIGTERM.
    // An hour: no boundary falls between the send and the signal.
    const child = spawnTallyd(childConfig(prefix, carbon.port, udp, { flushInterval: 3_600_000, batchInterval: 30_000 }));
    children.push(child);
    await waitForOutput(child, UP);
    await sendUdp(udp, counterLines(300, 'term.hits'));
    // Every datagram read off the socket (its kernel queue empty), so the samples sit in the batch.
    const deadline = Date.now() + 5000;
    while ((udpSocketStats(udp)?.rxQueue ?? 1) > 0) {
      assert.ok(Date.now() < deadline, 'tallyd read the datagrams');
      await sleep(10);
    }
    assert.equal(udpSocketStats(udp)?.drops, 0, 'no datagram dropped by the kernel');
    assert.equal(await curCounter(prefix, 'term.hits'), 0, 'still in memory before the signal');
    child.proc.kill('SIGTERM');
    assert.equal(await child.exited, 0, child.output());
    assert.equal(await curCounter(prefix, 'term.hits'), 300, 'merged into the open period');
    assert.equal(carbon.sum('stats_counts.term.hits'), 0, 'the period is not over: not published early');
  });

  test('carbon unreachable for three periods, then started: all three arrive with their own timestamps', async () => {
    prefix = testPrefix('outage');
    const carbonPort = await freePort();
    const udp = await freeUdpPort();
    const child = spawnTallyd(childConfig(prefix, carbonPort, udp, { flushInterval: 1000 }));
    children.push(child);
    await waitForOutput(child, UP);
    const boundaries: number[] = [];
    for (let i = 1; i <= 3; i++) {
      boundaries.push((await alignToPeriod(1000, 200)) / 1000 + 1);
      await sendUdp(udp, counterLines(i * 10, 'outage.hits'));
    }
    // The third period committed to the outbox while Carbon was still down.
    const third = `stats_counts.outage.hits 30 ${boundaries[2]}\n`;
    const deadline = Date.now() + 10_000;
    while (!(await outboxText(prefix)).includes(third)) {
      assert.ok(Date.now() < deadline, `the outbox holds ${JSON.stringify(third)}`);
      await sleep(25);
    }
    const carbon = new CarbonListener();
    listeners.push(carbon);
    await carbon.start(carbonPort);
    await carbon.waitFor(() => carbon.sum('stats_counts.outage.hits') >= 60, 15_000, 'the three periods');
    const points = carbon.series('stats_counts.outage.hits').filter((l) => l.value !== '0');
    assert.deepEqual(
      points.map((l) => [l.ts, l.value]),
      boundaries.map((ts, i) => [ts, String((i + 1) * 10)]),
    );
  });

  test('two processes on one prefix act as one: every sample once, one flush per period', async () => {
    prefix = testPrefix('two');
    const carbon = new CarbonListener();
    listeners.push(carbon);
    await carbon.start();
    const ports = [await freeUdpPort(), await freeUdpPort()];
    const procs = ports.map((p) => spawnTallyd(childConfig(prefix, carbon.port, p, { flushInterval: 1000 })));
    children.push(...procs);
    for (const p of procs) await waitForOutput(p, UP);
    // Both lead some of the shards (rendezvous hashing; a process takes its share within a lease check).
    await waitHolders(REDIS_URL, prefix, 'both processes leading shards', (h) => new Set(h).size === 2);
    for (let round = 0; round < 3; round++) {
      await alignToPeriod(1000, 200);
      await Promise.all(ports.map((p) => sendUdp(p, counterLines(100, 'shared.hits'))));
    }
    await carbon.waitFor(() => carbon.sum('stats_counts.shared.hits') >= 600, 10_000, '600 hits');
    const lastTs = Math.max(...carbon.series('stats_counts.shared.hits').filter((l) => l.value !== '0').map((l) => l.ts));
    await waitPublishedAfter(carbon, 'stats_counts.shared.hits', lastTs + 1, 10_000);
    assert.equal(carbon.sum('stats_counts.shared.hits'), 600);
    const perTs = new Map<number, number>();
    for (const l of carbon.series('stats_counts.shared.hits')) perTs.set(l.ts, (perTs.get(l.ts) ?? 0) + 1);
    for (const [ts, n] of perTs) assert.equal(n, 1, `period ${ts} flushed ${n} times`);
    // Every shard led by exactly one of the two (a lease holds one token), and each of them leads some.
    const holders = await leaseHolders(prefix);
    const tokens = procs.map(tokenOf);
    const byHolder = shardsByHolder(holders);
    assert.ok(holders.length > 1 && holders.every((h) => h !== null && tokens.includes(h)), `every shard led by one of ${tokens.join(', ')}: ${JSON.stringify(holders)}`);
    assert.deepEqual(tokens.map((tk) => (tk === null ? 0 : (byHolder.get(tk)?.length ?? 0)) > 0), [true, true], `both lead shards: ${JSON.stringify([...byHolder])}`);
    // The fleet's self-metrics once per period too (shard 0's leader sums the shards', flush/fleet-stats.ts).
    const numStatsPerTs = new Map<number, number>();
    for (const l of carbon.series('statsd.numStats')) numStatsPerTs.set(l.ts, (numStatsPerTs.get(l.ts) ?? 0) + 1);
    for (const [ts, n] of numStatsPerTs) assert.equal(n, 1, `period ${ts}: numStats emitted ${n} times`);
  });
});
