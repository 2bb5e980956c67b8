/**
 * SIGTERM under 20,000 metrics/s (issue 9, deliverable 5): 1,000 datagrams/s
 * of 20 lines (19 increments of a counter, then a gauge carrying the
 * datagram's sequence number) over a connected UDP socket. tallyd must exit 0
 * within stopTimeout (default 10000 ms), count every datagram the kernel gave
 * its socket, and drain the outbox to the listening Carbon before exit. The
 * unfinished period stays in Redis (it is not over); a tallyd started again
 * on the prefix publishes it whole, under its own timestamp.
 *
 * What is exact, and why:
 * - tallyd's own count of datagrams read (statsd.packets_received, summed over
 *   the periods Carbon got) times 19 is the counter's total, and times 20 is
 *   statsd.metrics_received: every datagram read is counted, nothing else.
 * - Loopback UDP keeps order, so the last sequence number tallyd read (the
 *   gauge's last value) says how many datagrams reached its socket before it;
 *   the gap to packets_received is what the kernel dropped (the `drops` of
 *   /proc/net/udp, or tallyd's udp_kernel_drops).
 * - A send after the socket closed draws an ICMP port-unreachable, which on
 *   loopback is handled within that send, so the connected sender's next send
 *   fails with ECONNREFUSED: of the sends that succeeded, all but the last
 *   reached the socket before it closed. (Checked on this kernel: to a
 *   closed loopback port, exactly one send succeeds, 500 times out of 500,
 *   with both CPUs busy.) Those, less the kernel's drops, must
 *   all be published (a datagram left unread in the socket's queue at close,
 *   or read and merged but never flushed, is a loss).
 * - At exit the outbox is empty and only the unfinished period holds the
 *   counter in Redis; once a second tallyd has run, nothing of it is left,
 *   and Carbon has the period of the last datagram that reached the socket.
 */
import assert from 'node:assert/strict';
import { afterEach, describe, test } from 'node:test';
import { Redis } from 'ioredis';
import { freeUdpPort, sleep } from '../helpers/carbon.js';
import { GoodCarbon } from '../helpers/fault-carbon.js';
import { FaultFixture } from '../helpers/fault-fixture.js';
import { udpSocketStats } from '../helpers/proc-udp.js';
import { waitAllLed } from '../helpers/lease.js';
import { REDIS_URL, testPrefix } from '../helpers/redis.js';
import { checkPeriods, diagnoseLines, periodOf, SteadySender, waitUntil } from '../helpers/steady-traffic.js';
import { spawnTallyd, testConfig, waitForOutput } from '../helpers/tallyd.js';
import { foldParts } from '../../src/flush/fold-parts.js';

const FLUSH_MS = 1000;
/** The contract's default stopTimeout (not set in the config, so the current code loads it too). */
const STOP_TIMEOUT_MS = 10_000;
const NAME = 'faults.stop.hits';
const SEQ = 'faults.stop.seq';
const INCREMENTS = 19;

/** What of the counter is left anywhere under the prefix, and what the outbox still holds. */
async function leftovers(prefix: string): Promise<{ hits: number; outbox: string[]; keys: string[] }> {
  const r = new Redis(REDIS_URL, { maxRetriesPerRequest: 1 });
  try {
    let hits = 0;
    const outbox: string[] = [];
    const keys: string[] = [];
    let cursor = '0';
    const all: string[] = [];
    do {
      const [next, found] = await r.scan(cursor, 'MATCH', `${prefix}*`, 'COUNT', 1000);
      cursor = next;
      all.push(...found);
    } while (cursor !== '0');
    const cursors = new Map<string, string>();
    for (const key of all) if (/:outbox_acked:/.test(key)) cursors.set(key, (await r.get(key)) ?? '');
    for (const key of all) {
      keys.push(key);
      const type = await r.type(key);
      const local = key.slice(prefix.length);
      if (type === 'string' && /:p:\d+:parts$/.test(local)) {
        // A period's packed parts (layout 3), folded as its leader will.
        hits += foldParts(await r.getBuffer(key)).counters.get(NAME) ?? 0;
      } else if (/:outbox$/.test(local)) {
        if (type === 'list') {
          const n = await r.llen(key);
          if (n > 0) outbox.push(`${local}: list of ${n} chunks`);
        } else if (type === 'stream') {
          // Entries past the lowest sink cursor are undelivered.
          const acked = [...cursors.values()].sort()[0] ?? '0-0';
          const rest = await r.xrange(key, `(${acked}`, '+');
          if (rest.length > 0) outbox.push(`${local}: ${rest.length} stream entries after cursor ${acked}`);
        }
      }
    }
    return { hits, outbox, keys };
  } finally {
    r.disconnect();
  }
}

describe('faults: SIGTERM under load', () => {
  const f = new FaultFixture();
  afterEach(() => f.cleanup());

  test('SIGTERM under 20,000 metrics/s: exit 0 in time, every delivered datagram counted, outbox drained', { timeout: 45_000 }, async (t) => {
    const prefix = testPrefix('faults-stop');
    f.prefixes.push(prefix);
    const carbon = new GoodCarbon();
    f.carbons.push(carbon);
    await carbon.start();
    const udp = await freeUdpPort();
    const config = (port: number) =>
      testConfig(prefix, carbon.port, {
        servers: [{ server: 'udp', address: '127.0.0.1', port }],
        flushInterval: FLUSH_MS,
        batchInterval: 50,
        leaseTtl: 3000,
        log: { level: 'info' },
      });
    const child = spawnTallyd(config(udp));
    f.children.push(child);
    await waitForOutput(child, 'tallyd is up');
    await waitAllLed(REDIS_URL, prefix);

    const sender = new SteadySender({ port: udp, name: NAME, everyMs: 10, datagramsPerTick: 10, incrementsPerDatagram: INCREMENTS, seqGauge: SEQ, connect: true });
    f.senders.push(sender);

    // Sample the kernel's counters for tallyd's socket for as long as it exists.
    let maxDrops = 0;
    let lastRxQueue = 0;
    let sampling = true;
    const sampler = (async () => {
      const deadline = Date.now() + 40_000;
      while (sampling && Date.now() < deadline) {
        const s = udpSocketStats(udp);
        if (s === null) {
          if (child.proc.exitCode !== null || child.proc.signalCode !== null || sender.refusedAtSeq !== null) return;
        } else {
          maxDrops = Math.max(maxDrops, s.drops);
          lastRxQueue = s.rxQueue;
        }
        await new Promise((r) => setTimeout(r, 5));
      }
    })();

    await sender.start();
    await sleep(3000); // 3 s at 20,000 metrics/s before the signal
    assert.ok(child.proc.pid !== undefined);
    const termAt = Date.now();
    process.kill(child.proc.pid, 'SIGTERM');
    const timeout = Symbol('timeout');
    let timer: NodeJS.Timeout | undefined;
    const code = await Promise.race([child.exited, new Promise<symbol>((r) => (timer = setTimeout(() => r(timeout), STOP_TIMEOUT_MS + 5000)))]);
    clearTimeout(timer);
    const exitMs = Date.now() - termAt;
    // The sender stops by itself at the first ECONNREFUSED; bound it anyway.
    await waitUntil(() => sender.refusedAtSeq !== null, 2000);
    await sender.stop();
    sampling = false;
    await sampler;
    // tallyd is gone: wait until Carbon has read everything it wrote (its connection closed).
    const closed = await waitUntil(() => carbon.open === 0 && carbon.accepted > 0, 3000);
    const atExit = await leftovers(prefix);
    const lastBeforeRestart = Math.max(0, ...carbon.series(`stats_counts.${NAME}`).map((l) => l.ts));

    // The unfinished period waits in Redis; a tallyd started again on the prefix publishes it.
    const again = spawnTallyd(config(await freeUdpPort()));
    f.children.push(again);
    await waitForOutput(again, 'tallyd is up');
    const published = await waitUntil(() => carbon.series(`stats_counts.${NAME}`).some((l) => l.ts > lastBeforeRestart), 10_000);
    assert.ok(again.proc.pid !== undefined);
    process.kill(again.proc.pid, 'SIGTERM');
    const againCode = await again.exited;
    await waitUntil(() => carbon.open === 0, 3000);

    const sum = (name: string) => carbon.sum(name);
    const hits = sum(`stats_counts.${NAME}`);
    const packets = sum('stats_counts.statsd.packets_received');
    const metrics = sum('stats_counts.statsd.metrics_received');
    const tallydDrops = sum('stats_counts.statsd.udp_kernel_drops');
    const gauge = carbon.series(`stats.gauges.${SEQ}`).sort((a, b) => a.ts - b.ts);
    const lastSeq = gauge.length > 0 ? Number(gauge[gauge.length - 1]?.value) : -1;
    const drops = Math.max(maxDrops, tallydDrops);
    const succeeded = sender.refusedAtSeq ?? sender.sent.length;
    const left = await leftovers(prefix);
    // Sends that succeeded = what reached the socket before it closed + the one that drew the ICMP.
    const reached = succeeded - 1;
    const lastReached = sender.sent[reached - 1];
    const lastPeriodTs = lastReached ? periodOf(lastReached.tMs, FLUSH_MS) / 1000 : NaN;
    const hitsTs = new Set(carbon.series(`stats_counts.${NAME}`).map((l) => l.ts));
    const delivered = sender.sent.slice(0, reached);
    const periods = checkPeriods(delivered, carbon.series(`stats_counts.${NAME}`), { intervalMs: FLUSH_MS, slackMs: 60, exactTotal: drops === 0 });

    const facts = [
      `exit ${String(code === timeout ? 'none (timed out)' : code)} after ${exitMs} ms (stopTimeout ${STOP_TIMEOUT_MS}); carbon connection closed: ${closed}`,
      `datagrams sent OK ${succeeded} (first ECONNREFUSED at seq ${String(sender.refusedAtSeq)}), last seq read by tallyd ${lastSeq}`,
      `packets_received ${packets}, metrics_received ${metrics}, ${NAME} ${hits} (= ${hits / INCREMENTS} datagrams)`,
      `kernel drops: /proc max ${maxDrops}, tallyd udp_kernel_drops ${tallydDrops}; last rx_queue seen ${lastRxQueue} bytes`,
      `reached the socket before it closed: ${reached} datagrams; published ${packets}; after the last one published: ${reached - (lastSeq + 1)}`,
      `carbon ${hits} + left in redis ${left.hits} = ${hits + left.hits} (= ${(hits + left.hits) / INCREMENTS} datagrams read and merged)`,
      `at exit: outbox ${atExit.outbox.length === 0 ? 'empty' : atExit.outbox.join(', ')}, ${NAME} left in redis ${atExit.hits} (the unfinished period)`,
      `a second tallyd published it: ${published}, exit ${String(againCode)}`,
      `redis after the second: ${NAME} left ${left.hits}; outbox ${left.outbox.length === 0 ? 'empty' : left.outbox.join(', ')}; keys ${left.keys.length}`,
      `period of the last datagram that reached the socket ${lastPeriodTs}, carbon has it: ${hitsTs.has(lastPeriodTs)}`,
    ];
    diagnoseLines(t, facts.join('\n'));
    diagnoseLines(t, periods.text);

    const problems: string[] = [];
    if (code !== 0) problems.push(`exit code ${String(code === timeout ? 'none (still running)' : code)}, want 0`);
    if (exitMs > STOP_TIMEOUT_MS + 1000) problems.push(`exited ${exitMs} ms after SIGTERM, want <= stopTimeout ${STOP_TIMEOUT_MS} (+1 s)`);
    if (packets === 0) problems.push('no statsd.packets_received at all');
    if (hits !== INCREMENTS * packets) problems.push(`${NAME} total ${hits} != ${INCREMENTS} x packets_received ${packets}: a datagram read was not counted`);
    if (metrics !== (INCREMENTS + 1) * packets) problems.push(`metrics_received ${metrics} != ${INCREMENTS + 1} x packets_received ${packets}`);
    // Order on loopback: every datagram up to the last one read reached tallyd unless the kernel dropped it.
    if (packets > lastSeq + 1 || packets + drops < lastSeq + 1)
      problems.push(`datagrams read ${packets} vs seq 0..${lastSeq} reached the socket with ${drops} kernel drops: want ${lastSeq + 1 - drops}..${lastSeq + 1}`);
    // Every datagram that reached the socket before it closed was read (or dropped by the kernel, counted) and published.
    if (packets + drops !== reached)
      problems.push(`published ${packets} datagrams + ${drops} kernel drops != ${reached} that reached the socket before it closed (${reached - packets - drops} missing)`);
    if (!hitsTs.has(lastPeriodTs)) problems.push(`the period of the last datagram that reached the socket (${lastPeriodTs}) never reached Carbon`);
    if (atExit.outbox.length > 0) problems.push(`outbox not drained at exit: ${atExit.outbox.join(', ')}`);
    // What the first tallyd left in Redis is exactly what the second published for the unfinished period.
    const resumed = carbon.series(`stats_counts.${NAME}`).filter((l) => l.ts > lastBeforeRestart && l.value !== '0');
    const resumedSum = resumed.reduce((a, l) => a + Number(l.value), 0);
    if (resumedSum !== atExit.hits) problems.push(`the second tallyd published ${resumedSum} of ${NAME}, the first left ${atExit.hits} in Redis`);
    if (againCode !== 0) problems.push(`the second tallyd exited ${String(againCode)}`);
    if (left.hits !== 0) problems.push(`${left.hits} increments of ${NAME} left in Redis after the second tallyd (never published)`);
    if (left.outbox.length > 0) problems.push(`outbox not drained: ${left.outbox.join(', ')}`);
    if (!periods.ok) problems.push(`per-period counts of the datagrams that reached the socket are wrong:\n${periods.text}`);
    assert.deepEqual(problems, [], `${facts.join('\n')}\n--- tallyd output (tail) ---\n${child.output().slice(-3000)}`);
  });
});
