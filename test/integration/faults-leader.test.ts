/**
 * Leader failover under steady traffic (issue 9, invariant 7): two tallyd on
 * one key prefix, each with its own UDP port and its own counter; the leader
 * (the process whose flusher token is in the lease key) is killed -9. The
 * survivor's samples arrive exactly, each under its own period, across the
 * takeover. The killed one's samples that it had not merged died with it (by
 * design): its traffic stops at the kill, its total is at most what was sent
 * and at least what was sent up to 300 ms before the kill, and its periods
 * before that are exact.
 */
import assert from 'node:assert/strict';
import { afterEach, describe, test } from 'node:test';
import { CarbonListener, freeUdpPort, sleep } from '../helpers/carbon.js';
import { FaultFixture } from '../helpers/fault-fixture.js';
import { leaderIndex, leaseKey, waitForLeaseHolder } from '../helpers/lease.js';
import { REDIS_URL, testPrefix } from '../helpers/redis.js';
import { assertPeriods, diagnoseLines, checkPeriods, periodOf, SteadySender, waitSettled, waitUntil } from '../helpers/steady-traffic.js';
import { spawnTallyd, testConfig, waitForOutput, type ChildTallyd } from '../helpers/tallyd.js';

const FLUSH_MS = 1000;
/** What the killed process may have received but not yet merged (batchInterval 50 ms + a merge round trip, with margin). */
const UNMERGED_MS = 300;

describe('faults: leader killed', () => {
  const f = new FaultFixture();
  afterEach(() => f.cleanup());

  test('two tallyd on one prefix, the leader killed -9 under traffic: no period missing or inflated', { timeout: 45_000 }, async (t) => {
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
          leaseTtl: 3000,
          // One shard, one lease: the takeover of a whole leader; shards-flush.test.ts kills one of several leaders.
          redis: { url: REDIS_URL, keyPrefix: prefix, shards: 1 },
          log: { level: 'info' },
        }),
      ),
    );
    f.children.push(...procs);
    for (const p of procs) await waitForOutput(p, 'tallyd is up');

    // The leader: the process whose flusher's token is in the lease key.
    const token = await waitForLeaseHolder(REDIS_URL, prefix);
    // Its log line may trail the SET by a moment.
    let leaderIdx = -1;
    await waitUntil(() => (leaderIdx = leaderIndex(procs, token)) >= 0, 5000);
    assert.ok(leaderIdx >= 0, `the lease token ${token} (${leaseKey(prefix)}) names one of the two processes`);
    const leader = procs[leaderIdx] as ChildTallyd;
    const survivor = procs[1 - leaderIdx] as ChildTallyd;
    const names = ['faults.leader.a', 'faults.leader.b'];
    const senderOf = ports.map((port, i) => new SteadySender({ port, name: names[i] as string, everyMs: 10, incrementsPerDatagram: 3 }));
    f.senders.push(...senderOf);
    const killedSender = senderOf[leaderIdx] as SteadySender;
    const survivorSender = senderOf[1 - leaderIdx] as SteadySender;
    const killedSeries = `stats_counts.${names[leaderIdx]}`;
    const survivorSeries = `stats_counts.${names[1 - leaderIdx]}`;

    await Promise.all(senderOf.map((s) => s.start()));
    await sleep(3500); // steady traffic before the kill
    await killedSender.stop(); // the killed one's traffic ends at the kill
    const killedAt = Date.now();
    assert.ok(leader.proc.pid !== undefined);
    process.kill(leader.proc.pid, 'SIGKILL');
    assert.equal(await leader.exited, 'SIGKILL');
    t.diagnostic(`leader (udp ${ports[leaderIdx]}) killed at ${killedAt}`);
    await sleep(8000); // the survivor's traffic across the takeover (leaseTtl 3000) and after
    await survivorSender.stop();

    const last = survivorSender.sent[survivorSender.sent.length - 1];
    assert.ok(last);
    const settled = await waitSettled(() => carbon.series(survivorSeries), survivorSender.total, periodOf(last.tMs, FLUSH_MS) / 1000 + 2, 20_000);
    t.diagnostic(`settled: ${settled}; takeover: ${survivor.output().includes('became the flushing leader')}`);

    const killedReport = checkPeriods(killedSender.sent, carbon.series(killedSeries), {
      intervalMs: FLUSH_MS,
      slackMs: 60,
      untilMs: killedAt - UNMERGED_MS,
      exactTotal: false,
    });
    diagnoseLines(t, `killed leader's counter:\n${killedReport.text}`);
    const survivorReport = checkPeriods(survivorSender.sent, carbon.series(survivorSeries), { intervalMs: FLUSH_MS, slackMs: 60 });
    diagnoseLines(t, `survivor's counter:\n${survivorReport.text}`);
    const tail = `\n--- survivor output (tail) ---\n${survivor.output().slice(-2500)}`;

    // The survivor: exact total and every period (the takeover must not leave a hole or a spike).
    assertPeriods("the survivor's counter", survivorSender.sent, carbon.series(survivorSeries), { intervalMs: FLUSH_MS, slackMs: 60 });
    // The killed one: only what it had not merged may be missing.
    const floor = killedSender.sentBefore(killedAt - UNMERGED_MS);
    assert.ok(
      killedReport.receivedTotal <= killedSender.total && killedReport.receivedTotal >= floor,
      `killed leader's total ${killedReport.receivedTotal}: want ${floor}..${killedSender.total}\n${killedReport.text}${tail}`,
    );
    assert.ok(killedReport.ok, `killed leader's periods up to ${UNMERGED_MS} ms before the kill\n${killedReport.text}${tail}`);
  });
});
