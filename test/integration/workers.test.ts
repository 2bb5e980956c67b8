/**
 * `workers: 2`: two cluster workers share the UDP port, each merges its own
 * batches into Redis, one flushes; SIGTERM to the primary stops both after
 * merging what they received.
 */
import assert from 'node:assert/strict';
import { afterEach, describe, test } from 'node:test';
import { alignToPeriod, CarbonListener, freeUdpPort, sendUdp } from '../helpers/carbon.js';
import { leaseHolders } from '../helpers/lease.js';
import { cleanup, testPrefix } from '../helpers/redis.js';
import { waitUntil } from '../helpers/steady-traffic.js';
import { spawnTallyd, testConfig, waitForOutput, type ChildTallyd } from '../helpers/tallyd.js';

describe('workers', () => {
  let child: ChildTallyd | null = null;
  let carbon: CarbonListener | null = null;
  let prefix = '';

  afterEach(async () => {
    if (child && child.proc.exitCode === null && child.proc.signalCode === null) {
      child.proc.kill('SIGKILL');
      await child.exited;
    }
    await carbon?.stop();
    await cleanup(prefix);
  });

  test('two workers share the udp port; every sample counted once; SIGTERM exits 0', async () => {
    prefix = testPrefix('workers');
    carbon = new CarbonListener();
    await carbon.start();
    const udp = await freeUdpPort();
    child = spawnTallyd(
      testConfig(prefix, carbon.port, {
        workers: 2,
        servers: [{ server: 'udp', address: '127.0.0.1', port: udp }],
        log: { level: 'info' },
      }),
    );
    await waitForOutput(child, 'all workers are up');
    await alignToPeriod(1000, 150);
    const lines: string[] = [];
    for (let i = 0; i < 2000; i++) lines.push(`workers.hits:1|c`);
    await sendUdp(udp, lines);
    await carbon.waitFor(() => carbon!.sum('stats_counts.workers.hits') >= 2000, 10_000, '2000 hits');
    // The next period published too (the idle counter re-emitted as 0): a second copy of the hits would be in by now.
    const hitTs = Math.max(...carbon.series('stats_counts.workers.hits').filter((l) => l.value !== '0').map((l) => l.ts));
    await carbon.waitFor(() => carbon!.series('stats_counts.workers.hits').some((l) => l.ts > hitTs), 10_000, 'the period after the hits');
    assert.equal(carbon.sum('stats_counts.workers.hits'), 2000);
    const out = child.output();
    assert.equal(out.match(/"msg":"tallyd is up"/g)?.length, 2, 'two workers started');
    // Each shard is led by one flush thread at a time (its lease holds one token); the workers' flush threads share
    // the 16 shards, so the tokens that led are at most the two workers' own.
    const tokens = new Set([...out.matchAll(/"token":"([^"]+)"[^\n]*became the flushing leader/g)].map((m) => m[1] as string));
    assert.ok(tokens.size >= 1 && tokens.size <= 2, `the flush threads that led: ${[...tokens].join(', ')}`);
    // A shard being handed over to the worker now ranked first for it is unled for up to a lease check: wait that out.
    let holders: Array<string | null> = [];
    const ledTokens = (): Set<string> => new Set([...child!.output().matchAll(/"token":"([^"]+)"[^\n]*became the flushing leader/g)].map((m) => m[1] as string));
    const allLed = await waitUntil(async () => {
      holders = await leaseHolders(prefix);
      const led = ledTokens();
      return holders.length === 16 && holders.every((h) => h !== null && led.has(h));
    }, 10_000);
    assert.ok(allLed, `every shard led by a worker: ${JSON.stringify(holders)}`);
    assert.ok(ledTokens().size <= 2, `the flush threads that led: ${[...ledTokens()].join(', ')}`);
    // The fleet's flush of a period is one numStats line.
    const numStatsTs = carbon.series('statsd.numStats').map((l) => l.ts);
    assert.equal(new Set(numStatsTs).size, numStatsTs.length, `numStats once per period: ${numStatsTs.join(',')}`);
    child.proc.kill('SIGTERM');
    assert.equal(await child.exited, 0, child.output());
    assert.equal(child.output().match(/"msg":"tallyd stopped"/g)?.length, 2);
  });
});
