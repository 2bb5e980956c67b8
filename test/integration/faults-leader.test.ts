/**
 * A leading process killed -9 under steady traffic (issue 9, invariant 7;
 * issue 11: a leader per shard). Two tallyd on one key prefix with the
 * default 16 shards, each with its own UDP port; the shards' leases are
 * spread over both (rendezvous hashing). The process that leads shard 0 (the
 * one that also emits the fleet's self-metrics) is killed -9. The survivor
 * gets two counters: one whose shard the killed process led (its periods
 * must cross the takeover without a hole or a spike) and one whose shard the
 * survivor led all along. Every shard the killed process led is led by the
 * survivor within leaseTtl plus its heartbeat and a lease check (read from
 * the leases). The killed one's samples that it had not merged died with it
 * (by design): its traffic stops at the kill, its total is at most what was
 * sent and at least what was sent up to 300 ms before the kill, and its
 * periods before that are exact.
 */
import assert from 'node:assert/strict';
import { afterEach, describe, test } from 'node:test';
import { ShardMap } from '../../src/store/shards.js';
import { CarbonListener, freeUdpPort, sleep } from '../helpers/carbon.js';
import { FaultFixture } from '../helpers/fault-fixture.js';
import { leaseHolders, shardsByHolder, tokenOf, waitHolders } from '../helpers/lease.js';
import { client, recordedShards, REDIS_URL, testPrefix } from '../helpers/redis.js';
import { assertPeriods, diagnoseLines, checkPeriods, periodOf, SteadySender, waitSettled, waitUntil } from '../helpers/steady-traffic.js';
import { spawnTallyd, testConfig, waitForOutput, type ChildTallyd } from '../helpers/tallyd.js';

const FLUSH_MS = 1000;
const LEASE_TTL_MS = 3000;
/** A lease check: each flush thread heartbeats and asks for its shards' leases every leaseTtl / 3. */
const CHECK_MS = LEASE_TTL_MS / 3;
/**
 * The victim's leases expire leaseTtl after their last renewal; the survivor judges the victim's flushers entry dead
 * at the same age when it asks (src/flush/shard-leases.ts) and takes each shard at its next lease check.
 */
const TAKEOVER_BOUND_MS = LEASE_TTL_MS + CHECK_MS;
/** The leases polled every 25 ms, and the timers of two tallyd and this process running late on 2 busy cores. */
const POLL_SLACK_MS = 1000;
/** What the killed process may have received but not yet merged (batchInterval 50 ms + a merge round trip, with margin). */
const UNMERGED_MS = 300;

/** The first `${stem}<i>` whose shard satisfies pred. */
function nameIn(map: ShardMap, stem: string, pred: (shard: number) => boolean): string {
  for (let i = 0; i < 10_000; i++) if (pred(map.of(`${stem}${i}`))) return `${stem}${i}`;
  throw new Error(`no name ${stem}<i> in the wanted shards`);
}

describe('faults: leader killed', () => {
  const f = new FaultFixture();
  afterEach(() => f.cleanup());

  test('two tallyd on one prefix (16 shards), the leader of shard 0 killed -9 under traffic: its shards led again in time, no period missing or inflated', { timeout: 60_000 }, async (t) => {
    const prefix = testPrefix('faults-leader');
    f.prefixes.push(prefix);
    const carbon = new CarbonListener();
    f.carbons.push(carbon);
    await carbon.start();
    const ports = [await freeUdpPort(), await freeUdpPort()];
    const procs = ports.map((port) =>
      spawnTallyd(
        testConfig(prefix, carbon.port, {
          servers: [{ server: 'udp', address: '127.0.0.1', port }],
          flushInterval: FLUSH_MS,
          batchInterval: 50,
          leaseTtl: LEASE_TTL_MS,
          log: { level: 'info' },
        }),
      ),
    );
    f.children.push(...procs);
    for (const p of procs) await waitForOutput(p, 'tallyd is up');

    // Both lead some shards (the second to start takes its share within a lease check).
    const before = await waitHolders(REDIS_URL, prefix, 'both processes leading shards', (h) => new Set(h).size === 2, 15_000);
    const r = client();
    const shards = await recordedShards(r, prefix);
    r.disconnect();
    assert.equal(shards, 16, 'the default shard count');
    assert.equal(before.length, 16);
    let tokens: Array<string | null> = [];
    await waitUntil(() => (tokens = procs.map(tokenOf)).every((tk) => tk !== null && before.includes(tk)), 5000);
    const victimIdx = tokens.indexOf(before[0] as string);
    assert.ok(victimIdx >= 0, `the holder of shard 0 (${before[0]}) is one of the processes (${tokens.join(', ')})`);
    const victim = procs[victimIdx] as ChildTallyd;
    const survivor = procs[1 - victimIdx] as ChildTallyd;
    const victimToken = tokens[victimIdx] as string;
    const survivorToken = tokens[1 - victimIdx] as string;
    const victimShards = shardsByHolder(before).get(victimToken) ?? [];
    t.diagnostic(`leases before the kill: ${JSON.stringify(Object.fromEntries([...shardsByHolder(before)].map(([tk, s]) => [tokens.indexOf(tk), s])))} (victim: process ${victimIdx})`);

    const map = new ShardMap(16);
    // The survivor's counters: one in a shard the victim leads (it moves), one in a shard the survivor leads.
    const moved = nameIn(map, 'faults.leader.moved', (s) => before[s] === victimToken);
    const kept = nameIn(map, 'faults.leader.kept', (s) => before[s] === survivorToken);
    const killedName = 'faults.leader.killed';
    const survivorPort = ports[1 - victimIdx] as number;
    const survivorSenders = [moved, kept].map((name) => new SteadySender({ port: survivorPort, name, everyMs: 10, incrementsPerDatagram: 3 }));
    const killedSender = new SteadySender({ port: ports[victimIdx] as number, name: killedName, everyMs: 10, incrementsPerDatagram: 3 });
    f.senders.push(killedSender, ...survivorSenders);
    t.diagnostic(`${moved} in shard ${map.of(moved)} (victim's), ${kept} in shard ${map.of(kept)} (survivor's), ${killedName} in shard ${map.of(killedName)}`);

    await Promise.all([killedSender, ...survivorSenders].map((s) => s.start()));
    await sleep(3500); // steady traffic before the kill
    await killedSender.stop(); // the killed one's traffic ends at the kill
    const killedAt = Date.now();
    assert.ok(victim.proc.pid !== undefined);
    process.kill(victim.proc.pid, 'SIGKILL');
    assert.equal(await victim.exited, 'SIGKILL');
    t.diagnostic(`process ${victimIdx} (udp ${ports[victimIdx]}) killed at ${killedAt}`);

    // Every shard led by the survivor: read the leases until they all name it.
    const after = await waitHolders(REDIS_URL, prefix, 'every shard led by the survivor', (h) => h.every((tk) => tk === survivorToken), 15_000);
    const takeoverMs = Date.now() - killedAt;
    t.diagnostic(`the victim's ${victimShards.length} shards led by the survivor ${takeoverMs} ms after the kill `
      + `(bound: leaseTtl ${LEASE_TTL_MS} + lease check ${CHECK_MS} + slack ${POLL_SLACK_MS})`);
    assert.equal(after.length, 16);
    assert.ok(takeoverMs <= TAKEOVER_BOUND_MS + POLL_SLACK_MS, `the killed process's shards ${victimShards.join(',')} led again after ${takeoverMs} ms`);

    const sinceKill = Date.now() - killedAt;
    await sleep(Math.max(0, 8000 - sinceKill)); // the survivor's traffic across the takeover and after
    for (const s of survivorSenders) await s.stop();
    assert.deepEqual(await leaseHolders(prefix), Array.from({ length: 16 }, () => survivorToken), 'the survivor still leads every shard');

    const tail = `\n--- survivor output (tail) ---\n${survivor.output().slice(-2500)}`;
    for (const s of survivorSenders) {
      const series = `stats_counts.${s === survivorSenders[0] ? moved : kept}`;
      const last = s.sent[s.sent.length - 1];
      assert.ok(last);
      const settled = await waitSettled(() => carbon.series(series), s.total, periodOf(last.tMs, FLUSH_MS) / 1000 + 2, 20_000);
      const report = checkPeriods(s.sent, carbon.series(series), { intervalMs: FLUSH_MS, slackMs: 60 });
      diagnoseLines(t, `${series} (survivor's; settled: ${settled}):\n${report.text}`);
      // Exact total and every period (the takeover must not leave a hole or a spike).
      if (!report.ok) throw new Error(`${series}: per-period counts wrong\n${report.text}${tail}`);
      assertPeriods(series, s.sent, carbon.series(series), { intervalMs: FLUSH_MS, slackMs: 60 });
    }

    // The killed one: only what it had not merged may be missing.
    const killedSeries = `stats_counts.${killedName}`;
    const killedReport = checkPeriods(killedSender.sent, carbon.series(killedSeries), {
      intervalMs: FLUSH_MS,
      slackMs: 60,
      untilMs: killedAt - UNMERGED_MS,
      exactTotal: false,
    });
    diagnoseLines(t, `killed process's counter:\n${killedReport.text}`);
    const floor = killedSender.sentBefore(killedAt - UNMERGED_MS);
    assert.ok(
      killedReport.receivedTotal <= killedSender.total && killedReport.receivedTotal >= floor,
      `killed process's total ${killedReport.receivedTotal}: want ${floor}..${killedSender.total}\n${killedReport.text}${tail}`,
    );
    assert.ok(killedReport.ok, `killed process's periods up to ${UNMERGED_MS} ms before the kill\n${killedReport.text}${tail}`);
  });
});
