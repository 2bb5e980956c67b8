/**
 * The flush side of sharding (issue 11, deliverables 3 and 4) with real
 * tallyd processes on the local Redis, redis.shards 8, a Carbon listener and
 * steady traffic: the shards' leases spread over the processes by rendezvous
 * hashing (a third process started later takes its share by handover, a
 * process killed -9 gives its shards up within leaseTtl and a check), every
 * name's periods stay exact, and the self-metrics (numStats, processing_time,
 * timestamp_lag) appear once per period for the fleet, numStats equal to the
 * stats the fleet emitted for that period.
 */
import assert from 'node:assert/strict';
import { afterEach, describe, test, type TestContext } from 'node:test';
import { Redis } from 'ioredis';
import { LAYOUT_VERSION } from '../../src/store/keys.js';
import { rankFor } from '../../src/flush/shard-leases.js';
import { ShardMap } from '../../src/store/shards.js';
import { CarbonListener, freeUdpPort, sendUdp, sleep, type CarbonLine } from '../helpers/carbon.js';
import { FaultFixture } from '../helpers/fault-fixture.js';
import { REDIS_URL, testPrefix } from '../helpers/redis.js';
import { checkPeriods, diagnoseLines, periodOf, SteadySender, waitSettled, waitUntil } from '../helpers/steady-traffic.js';
import { spawnTallyd, testConfig, waitForOutput, type ChildTallyd } from '../helpers/tallyd.js';

const SHARDS = 8;
const FLUSH_MS = 1000;
const LEASE_TTL_MS = 3000;
const CHECK_MS = LEASE_TTL_MS / 3;
/** What a killed process may have received but not yet merged (batchInterval 50 ms + a merge round trip, with margin). */
const UNMERGED_MS = 300;
const TAGS = new ShardMap(SHARDS).tags;
const NUM_STATS = 'statsd.numStats';
const PROCESSING = 'stats.statsd.processing_time';
const LAG = 'stats.gauges.statsd.timestamp_lag';
const BAD_LINES = 'stats_counts.statsd.bad_lines_seen';

interface Proc {
  child: ChildTallyd;
  port: number;
  senders: SteadySender[];
}

/** Each shard's lease holder (token or null), in shard order, and the flushers hash (token -> heartbeat ms). */
async function leaseState(redis: Redis, prefix: string): Promise<{ holders: Array<string | null>; flushers: Record<string, string> }> {
  const holders = await Promise.all(TAGS.map((tag) => redis.get(`${prefix}v${LAYOUT_VERSION}:{${tag}}:lease`)));
  const flushers = await redis.hgetall(`${prefix}v${LAYOUT_VERSION}:{${TAGS[0]}}:flushers`);
  return { holders, flushers };
}

/** The process whose output names token (its 'flush thread joined the flushers' line at start carries it), or -1. */
function ownerOf(procs: readonly Proc[], token: string | null): number {
  return token === null ? -1 : procs.findIndex((p) => p.child.output().includes(token));
}

/**
 * Whether every shard is led by the flush thread that ranks first for it (rendezvous hashing) among the `count` flush
 * threads heartbeating in `flushers`: the leases settled. Tokens are random, so which process that is varies.
 */
async function settled(redis: Redis, prefix: string, count: number): Promise<boolean> {
  const { holders, flushers } = await leaseState(redis, prefix);
  const tokens = Object.keys(flushers);
  return tokens.length === count && holders.every((h, s) => h !== null && h === rankFor(tokens, s)[0]);
}

/** Shards led per process (index into procs), -1 for unled or unknown. */
async function ledBy(redis: Redis, prefix: string, procs: readonly Proc[]): Promise<number[]> {
  return (await leaseState(redis, prefix)).holders.map((t) => ownerOf(procs, t));
}

function byTs(lines: readonly CarbonLine[]): Map<number, CarbonLine[]> {
  const out = new Map<number, CarbonLine[]>();
  for (const l of lines) {
    const list = out.get(l.ts) ?? [];
    list.push(l);
    out.set(l.ts, list);
  }
  return out;
}

/**
 * Per period up to lastTs: the self-metrics appear once (identical re-sends of a line count once), numStats equals the
 * stats the fleet emitted for the period (counters by their count line, gauges, sets; the traffic holds no timers), and
 * no line has two values.
 * Returns the problems found, one line each (empty: all good), and a table.
 */
function fleetStatsProblems(lines: readonly CarbonLine[], firstTs: number, lastTs: number): { problems: string[]; table: string } {
  const problems: string[] = [];
  const rows: string[] = ['ts  numStats  stats-emitted  processing_time  timestamp_lag'];
  const periods = byTs(lines);
  for (let ts = firstTs; ts <= lastTs; ts++) {
    const ls = periods.get(ts) ?? [];
    const values = (name: string): string[] => [...new Set(ls.filter((l) => l.name === name).map((l) => l.value))];
    const distinct = (prefix: string, suffix = ''): number => new Set(ls.filter((l) => l.name.startsWith(prefix) && l.name.endsWith(suffix)).map((l) => l.name)).size;
    const num = values(NUM_STATS);
    const proc = values(PROCESSING);
    const lag = values(LAG);
    if (ls.some((l) => l.name.startsWith('stats.timers.'))) problems.push(`${ts}: timer lines (the check counts none)`);
    const emitted = distinct('stats_counts.') + distinct('stats.gauges.') + distinct('stats.sets.', '.count');
    rows.push(`${ts}  ${num.join('/') || '-'}  ${emitted}  ${proc.join('/') || '-'}  ${lag.join('/') || '-'}`);
    if (num.length !== 1) problems.push(`${ts}: numStats values ${JSON.stringify(num)}, want exactly one`);
    else if (Number(num[0]) !== emitted) problems.push(`${ts}: numStats ${num[0]}, but the fleet emitted ${emitted} stats`);
    if (proc.length !== 1) problems.push(`${ts}: processing_time values ${JSON.stringify(proc)}, want exactly one`);
    if (lag.length > 1 || (lag.length === 0 && ts > firstTs)) problems.push(`${ts}: timestamp_lag values ${JSON.stringify(lag)}, want one`);
    // No line has two values for one period (a loss counter, or statsd's own counters, emitted by two shards).
    for (const name of new Set(ls.map((l) => l.name))) {
      const vs = values(name);
      if (vs.length > 1) problems.push(`${ts}: ${name} has values ${JSON.stringify(vs)}`);
    }
  }
  return { problems, table: rows.join('\n') };
}

describe('shards: a flusher per shard, leases by rendezvous hashing, one set of self-metrics', () => {
  const f = new FaultFixture();
  afterEach(() => f.cleanup());

  async function start(prefix: string, carbon: CarbonListener, names: readonly string[]): Promise<Proc> {
    const port = await freeUdpPort();
    const child = spawnTallyd(
      testConfig(prefix, carbon.port, {
        servers: [{ server: 'udp', address: '127.0.0.1', port }],
        flushInterval: FLUSH_MS,
        batchInterval: 50,
        leaseTtl: LEASE_TTL_MS,
        redis: { url: REDIS_URL, keyPrefix: prefix, shards: SHARDS },
        log: { level: 'info' },
      }),
    );
    f.children.push(child);
    await waitForOutput(child, 'tallyd is up');
    const senders = names.map((name) => new SteadySender({ port, name, everyMs: 20, incrementsPerDatagram: 2 }));
    f.senders.push(...senders);
    return { child, port, senders };
  }

  const namesFor = (who: string): string[] => Array.from({ length: 4 }, (_, i) => `shards.flush.${who}${i}`);

  /** A fresh prefix, a Carbon listener, a Redis client for the lease state, and two processes up (names a and b), not yet sending. */
  async function twoProcesses(t: TestContext, prefixName: string): Promise<{ prefix: string; carbon: CarbonListener; redis: Redis; procs: Proc[] }> {
    const prefix = testPrefix(prefixName);
    f.prefixes.push(prefix);
    const carbon = new CarbonListener();
    f.carbons.push(carbon);
    await carbon.start();
    const redis = new Redis(REDIS_URL, { maxRetriesPerRequest: 1 });
    t.after(() => redis.disconnect());
    const procs: Proc[] = [await start(prefix, carbon, namesFor('a')), await start(prefix, carbon, namesFor('b'))];
    return { prefix, carbon, redis, procs };
  }

  test('two processes share the shards, a third takes its share by handover: every name exact per period, self-metrics once for the fleet', { timeout: 90_000 }, async (t) => {
    const { prefix, carbon, redis, procs } = await twoProcesses(t, 'shards-flush');
    const firstTs = Math.floor(Date.now() / FLUSH_MS) + 2; // a whole period after both are up
    for (const s of procs.flatMap((p) => p.senders)) await s.start();
    // Bad lines to each process: the loss counter is an ordinary counter, so it lands once, summed over the fleet.
    await sendUdp(procs[0]!.port, ['bad line one', 'bad-line-two:x|c', 'bad:1|zz']);
    await sendUdp(procs[1]!.port, ['also bad', 'bad:|c']);

    // Both lead some shards within a couple of lease checks of the second one's start.
    let led: number[] = [];
    const shared = await waitUntil(async () => (await settled(redis, prefix, 2)) && (led = await ledBy(redis, prefix, procs)).every((i) => i >= 0),
      LEASE_TTL_MS * 3);
    const state = await leaseState(redis, prefix);
    assert.ok(shared, `every shard led by the process ranked first for it: ${JSON.stringify(led)}; flushers ${JSON.stringify(state.flushers)}`);
    // Rendezvous hashing gives one of two processes none of 8 shards with probability 2 x 2^-8: the ranking decides.
    const expected2 = TAGS.map((_, sh) => ownerOf(procs, rankFor(Object.keys(state.flushers), sh)[0]!));
    assert.deepEqual(led, expected2);
    assert.equal(Object.keys(state.flushers).length, 2, `two flush threads heartbeat: ${JSON.stringify(state.flushers)}`);
    for (const token of Object.keys(state.flushers)) assert.ok(ownerOf(procs, token) >= 0, `flusher ${token} is one of the processes`);
    t.diagnostic(`shards led by process (2 running): ${led.join(' ')}`);

    await sleep(3000);
    // A third process: it takes its share of the shards by handover while traffic flows.
    const third = await start(prefix, carbon, namesFor('c'));
    procs.push(third);
    const joinedAt = Date.now();
    for (const s of third.senders) await s.start();
    const tookShare = await waitUntil(async () => (await settled(redis, prefix, 3)) && (led = await ledBy(redis, prefix, procs)).every((i) => i >= 0),
      LEASE_TTL_MS * 3);
    t.diagnostic(`shards led by process (3 running, ${Date.now() - joinedAt} ms after the third was up): ${led.join(' ')}`);
    assert.ok(tookShare, `the third process takes the shards it ranks first for: ${JSON.stringify(led)}`);
    const tokens3 = Object.keys((await leaseState(redis, prefix)).flushers);
    const third3 = TAGS.map((_, sh) => rankFor(tokens3, sh)[0]).filter((tk) => ownerOf(procs, tk!) === 2).length;
    t.diagnostic(`the third process ranks first for ${third3} of ${SHARDS} shards`);
    assert.equal(Object.keys((await leaseState(redis, prefix)).flushers).length, 3);
    await sleep(4000);
    for (const s of procs.flatMap((p) => p.senders)) await s.stop();

    // Settled: every name's total arrived, and shard 0 emitted the fleet's stats for the period after the last sample.
    const all = procs.flatMap((p) => p.senders.map((s, i) => ({ s, name: namesFor(['a', 'b', 'c'][procs.indexOf(p)]!)[i]! })));
    const lastTs = Math.max(...all.map(({ s }) => periodOf(s.sent[s.sent.length - 1]!.tMs, FLUSH_MS) / 1000)) + 1;
    for (const { s, name } of all) await waitSettled(() => carbon.series(`stats_counts.${name}`), s.total, lastTs, 20_000);
    await waitUntil(() => carbon.series(NUM_STATS).some((l) => l.ts >= lastTs) && fleetStatsProblems(carbon.lines, firstTs, lastTs).problems.length === 0, 10_000);

    for (const { s, name } of all) {
      const report = checkPeriods(s.sent, carbon.series(`stats_counts.${name}`), { intervalMs: FLUSH_MS, slackMs: 60 });
      if (!report.ok) diagnoseLines(t, `${name}:\n${report.text}`);
      assert.ok(report.ok, `${name}: every period exact\n${report.text}`);
    }
    const { problems, table } = fleetStatsProblems(carbon.lines, firstTs, lastTs);
    diagnoseLines(t, table);
    assert.deepEqual(problems, [], table);
    const bad = carbon.series(BAD_LINES);
    const badValues = [...byTs(bad).values()].map((ls) => new Set(ls.map((l) => l.value)));
    assert.ok(badValues.every((v) => v.size === 1), `bad_lines_seen once per period: ${JSON.stringify(bad)}`);
    assert.equal([...byTs(bad).values()].reduce((n, ls) => n + Number(ls[0]!.value), 0), 5, 'bad_lines_seen counts the 5 bad lines of both processes once');
    assert.equal(carbon.malformed.length, 0);
  });

  test('a process killed -9 under traffic: its shards are led again within leaseTtl and a check, no period missing or doubled', { timeout: 90_000 }, async (t) => {
    const { prefix, carbon, redis, procs } = await twoProcesses(t, 'shards-flush-kill');
    const firstTs = Math.floor(Date.now() / FLUSH_MS) + 2;
    for (const s of procs.flatMap((p) => p.senders)) await s.start();
    let led: number[] = [];
    assert.ok(await waitUntil(async () => (await settled(redis, prefix, 2)) && (led = await ledBy(redis, prefix, procs)).every((i) => i >= 0),
      LEASE_TTL_MS * 3), `every shard led by the process ranked first for it: ${JSON.stringify(led)}`);
    await sleep(3000);

    // Kill the one leading shard 0 (the fleet's self-metrics move too); its traffic ends at the kill.
    const victim = led[0]!;
    const survivor = 1 - victim;
    const killed = procs[victim]!;
    for (const s of killed.senders) await s.stop();
    const killedAt = Date.now();
    process.kill(killed.child.proc.pid!, 'SIGKILL');
    assert.equal(await killed.child.exited, 'SIGKILL');
    t.diagnostic(`killed process ${victim}, which led shards ${led.map((p, s) => (p === victim ? s : -1)).filter((s) => s >= 0).join(',')}`);

    const moved = await waitUntil(async () => (led = await ledBy(redis, prefix, procs)).every((i) => i === survivor), LEASE_TTL_MS * 4);
    const movedMs = Date.now() - killedAt;
    t.diagnostic(`every shard led by the survivor ${movedMs} ms after the kill: ${led.join(' ')}`);
    assert.ok(moved, `every shard is led by the survivor: ${JSON.stringify(led)}`);
    // leaseTtl plus a lease check, plus a heartbeat's staleness check and the polling here.
    assert.ok(movedMs <= LEASE_TTL_MS + 2 * CHECK_MS + 500, `shards moved within leaseTtl and a check: ${movedMs} ms`);
    await sleep(3000);
    for (const s of procs[survivor]!.senders) await s.stop();

    const survivorNames = namesFor(survivor === 0 ? 'a' : 'b');
    const killedNames = namesFor(victim === 0 ? 'a' : 'b');
    const survivorSenders = procs[survivor]!.senders;
    const lastTs = Math.max(...survivorSenders.map((s) => periodOf(s.sent[s.sent.length - 1]!.tMs, FLUSH_MS) / 1000)) + 1;
    for (const [i, s] of survivorSenders.entries()) await waitSettled(() => carbon.series(`stats_counts.${survivorNames[i]}`), s.total, lastTs, 20_000);
    await waitUntil(() => carbon.series(NUM_STATS).some((l) => l.ts >= lastTs), 10_000);
    await sleep(1500); // the other shards' lines of the last periods checked

    for (const [i, s] of survivorSenders.entries()) {
      const report = checkPeriods(s.sent, carbon.series(`stats_counts.${survivorNames[i]}`), { intervalMs: FLUSH_MS, slackMs: 60 });
      if (!report.ok) diagnoseLines(t, `${survivorNames[i]}:\n${report.text}`);
      assert.ok(report.ok, `survivor's ${survivorNames[i]}: exact, every period\n${report.text}`);
    }
    for (const [i, s] of killed.senders.entries()) {
      const name = killedNames[i]!;
      const report = checkPeriods(s.sent, carbon.series(`stats_counts.${name}`), { intervalMs: FLUSH_MS, slackMs: 60, untilMs: killedAt - UNMERGED_MS, exactTotal: false });
      const floor = s.sentBefore(killedAt - UNMERGED_MS);
      assert.ok(report.receivedTotal <= s.total && report.receivedTotal >= floor, `killed process's ${name}: total ${report.receivedTotal}, want ${floor}..${s.total}\n${report.text}`);
      assert.ok(report.ok, `killed process's ${name}: periods up to ${UNMERGED_MS} ms before the kill\n${report.text}`);
      assert.ok(report.rows.every((r) => r.conflicting === null), `killed process's ${name}: no period doubled\n${report.text}`);
    }
    // The self-metrics: never two values for a period; once per period on both sides of the kill.
    const { problems, table } = fleetStatsProblems(carbon.lines, firstTs, lastTs);
    diagnoseLines(t, table);
    assert.deepEqual(problems.filter((p) => /values/.test(p)), [], table);
    assert.deepEqual(problems, [], table);
  });
});
