/**
 * The scale curve of issue 11 (deliverable 6): distinct names per period
 * against tallyd as 1 and as 2 processes, on a single redis-server of the
 * bench's own and on a 3-master + 3-replica Redis Cluster
 * (test/helpers/redis-cluster.ts), side by side in one run.
 *
 *   npm run bench:scale-curve -- [--names 10000,100000] [--procs 1,2] [--redis single,cluster] [--shards 16]
 *                                [--periods 2] [--warmup 1] [--flush-interval 10000] [--profile] [--full]
 *
 * Each configuration: a fresh key prefix, P tallyd processes (`node
 * dist/main.js`, debug log) on that prefix, each on its own UDP port, and a
 * Carbon listener (curve-carbon.ts). From a boundary on, every period, the
 * names `scale.<i>:1|c` (32 per datagram) are sent once each by
 * bench/lib/loadgen.c, one loadgen per process with its half of the names,
 * spread evenly over SPREAD of the period; beside them the runner sends
 * steady metrics (counters and timers, `scale_steady.*`) at fixed offsets
 * inside each period, away from its edges, so each one's total per period
 * is known exactly. The first `--warmup` periods (names new to tallyd) are
 * not measured. Per measured period: statsd.processing_time, the flusher's
 * stage times (its `period committed` debug line) and wall time of the
 * commit, the lag after the boundary (the period's last line in Carbon
 * minus its timestamp) and statsd.timestamp_lag, lines, whether every
 * steady metric is exact, statsd.udp_kernel_drops and the loss of the scale
 * names; medians over the periods, and the load average.
 *
 * --profile runs process 0 (the leader: it starts first and takes the
 * lease) under `node --cpu-prof`, which profiles the flush thread too, and
 * prints each thread's top self time (bench/profile/profile-top.ts).
 */
import { spawnSync } from 'node:child_process';
import dgram from 'node:dgram';
import { mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import { Redis } from 'ioredis';
import { RedisCluster } from '../../test/helpers/redis-cluster.js';
import { RedisServer } from '../../test/helpers/redis-server.js';
import { ensureBuilt } from '../lib/build.js';
import { buildLoadgen, BUILD_DIR, runLoadgen, type LoadgenReport } from '../lib/loadgen.js';
import { machine, RESULTS_DIR } from '../lib/report.js';
import { closeRedis, cpuSeconds, ROOT, startServer, udpDrops, type Commit, type RunningServer } from '../lib/servers.js';
import { median } from '../throughput/search.js';
import { CurveCarbon } from './curve-carbon.js';
import { commandStats, cpuOf, type CommandStat } from '../lib/redis-stats.js';
import { PER_DATAGRAM, sleep } from './scale-stats.js';

const USAGE = `npm run bench:scale-curve -- [options]
  --names a,b          distinct names per period (default 10000,100000; --full 1000,10000,100000,1000000,5000000)
  --procs a,b          tallyd processes on one prefix, each on its own UDP port with its share of the names (default 1,2)
  --redis a,b          single (a redis-server of the bench's own), cluster (3 masters + 3 replicas) (default both)
  --shards a,b         redis.shards (default 16, tallyd's default; 1 is the layout before shards)
  --periods N          measured periods per configuration (default 2; --full 3)
  --warmup N           periods before them, not measured (default 1: the names are new to tallyd there)
  --flush-interval MS  default 10000
  --drain S            seconds after the load the last loaded period may take to reach Carbon (default 2 flush intervals + 60)
  --profile            process 0 (the leader) under node --cpu-prof; prints each thread's top self time
  --full               the whole curve (long: ~2 min a configuration at 1M, more at 5M)
  --no-build           run dist/ as it is, even if src/ is newer
`;

/** Each period's names go out over this share of it, from START_AFTER_MS after the boundary: a loop never spans a boundary. */
const SPREAD = 0.8;
const START_AFTER_MS = 50;
/** Steady metrics: one sample each every STEADY_EVERY_MS, from STEADY_EDGE of a period to 1 - STEADY_EDGE of it. */
const STEADY_COUNTERS = 4;
const STEADY_TIMERS = 2;
const STEADY_EVERY_MS = 250;
const STEADY_EDGE = 0.1;
/** tallyd's default outboxMaxBytes; a scale name's two lines (`stats.scale.<i> 0.1 <ts>`, `stats_counts.scale.<i> 1 <ts>`) take < 80 bytes. */
const DEFAULT_OUTBOX_MAX_BYTES = 256 * 1024 * 1024;
const LINE_BYTES_PER_NAME = 80;
const OUTBOX_PERIODS = 4;

type Target = 'single' | 'cluster';

interface Config {
  names: number;
  procs: number;
  redis: Target;
  shards: number;
  flushInterval: number;
  warmup: number;
  periods: number;
  profile: boolean;
  /** ms after the load that the last loaded period may take to be complete in Carbon. */
  drainMs: number;
}

interface PeriodRow {
  ts: number;
  /** statsd.processing_time from Carbon (ms), and the flusher's own wall time: commit minus the later of the boundary and the previous commit. */
  processingTimeMs: number | null;
  commitWallMs: number | null;
  /** Commits logged for this period (one leader: 1; a leader per shard: one each) and their stages, summed over them. */
  commits: number;
  stagesMs: Record<string, number>;
  /**
   * The flush work on the busiest process: per process, its commits' stages summed; the largest. One leader: its
   * read .. commit. With a leader per shard, the processes flush their shards side by side: this is what halves.
   */
  flushMs: number | null;
  /** The period's last line in Carbon minus its timestamp; statsd.timestamp_lag (s). */
  lagMs: number | null;
  timestampLagS: number | null;
  lines: number;
  steadyExact: boolean;
  steadyWrong: string[];
  /** statsd.udp_kernel_drops and statsd.late_samples of the period (0 when tallyd sent no line: it has not counted any yet). */
  kernelDrops: number;
  lateSamples: number;
  /** Scale names sent in the period, and the sum of their stats_counts lines (a re-sent line overwrites). */
  sent: number;
  received: number;
  duplicates: number;
}

interface ConfigResult {
  config: Config;
  label: string;
  loadAvgStart: number[];
  loadAvgEnd: number[];
  periods: PeriodRow[];
  medians: {
    processingTimeMs: number | null;
    /** PeriodRow.flushMs: the busiest process's flush work for a period (its stages, read .. commit, summed). */
    flushMs: number | null;
    /** flushMs per name, µs. */
    usPerName: number | null;
    commitWallMs: number | null;
    stagesMs: Record<string, number>;
    lagMs: number | null;
    timestampLagS: number | null;
    lines: number | null;
  };
  steadyExact: boolean;
  kernelDrops: number;
  procUdpDrops: number;
  /**
   * Of every scale name sent (warm-up included), the share missing from every period's stats_counts lines up to
   * the period after the load: lost. `misplaced`: the share of the measured periods' samples counted in another
   * period (a batch merged late lands in the oldest open period, statsd.late_samples).
   */
  loss: number;
  misplaced: number;
  /** CPU over the load window, % of one core: tallyd (all processes), loadgens, Redis (all nodes). */
  cpuPct: { tallyd: number; loadgen: number; redis: number | null };
  /** Redis's top commands by time over the measured window (INFO commandstats; inner script calls are counted too). */
  redisTop: string[];
  /** Which process committed the measured periods (index: process order). */
  committedBy: number[];
  loadgenMaxBehindMs: number;
  warnings: Record<string, number>;
  /** The leaders' compactions of open periods (all periods, warm-up included): how many, bytes read and written, busy ms. */
  compactions: { count: number; bytesIn: number; bytesOut: number; busyMs: number; measured: number };
  profiles: string[];
  wallMs: number;
  error?: string;
}

/** A Redis for tallyd: its `redis` config, how to empty it between configurations, its CPU seconds, how to stop it. */
interface RedisTarget {
  kind: Target;
  redis: { url?: string; nodes?: readonly string[] };
  describe: string;
  reset(): Promise<void>;
  cpuSeconds(): Promise<number>;
  /** INFO commandstats summed over the nodes that serve writes (CONFIG RESETSTAT at each configuration's start). */
  commandStats(): Promise<Map<string, CommandStat>>;
  stop(): Promise<void>;
}

async function startTarget(kind: Target): Promise<RedisTarget> {
  if (kind === 'single') {
    const server = await RedisServer.start();
    const client = new Redis(server.url, { maxRetriesPerRequest: 1 });
    const version = (await client.info('server')).match(/redis_version:(\S+)/)?.[1] ?? '?';
    return {
      kind,
      redis: { url: server.url },
      describe: `redis-server ${version} on :${server.port} (no persistence)`,
      reset: async () => void (await client.flushall()),
      cpuSeconds: async () => cpuOf(await client.info('cpu')),
      commandStats: async () => commandStats(await client.info('commandstats')),
      stop: async () => {
        client.disconnect();
        await server.stop();
      },
    };
  }
  const cluster = await RedisCluster.start();
  const masters = async () => (await cluster.topology()).filter((i) => i.master && !i.failed).map((i) => cluster.node(i.addr));
  return {
    kind,
    redis: { nodes: cluster.seeds },
    describe: `Redis Cluster, 3 masters + 3 replicas on ${cluster.seeds.join(' ')} (test/helpers/redis-cluster.ts: AOF, appendfsync always)`,
    reset: async () => {
      for (const m of await masters()) await m.call('FLUSHALL');
      // replicas follow their masters; wait for them, so a config starts on an idle cluster
      await cluster.waitHealthy(30_000);
    },
    cpuSeconds: async () => {
      let total = 0;
      for (const n of cluster.nodes) if (n.running) total += cpuOf(String(await n.call('INFO', 'cpu')));
      return total;
    },
    commandStats: async () => {
      const texts: string[] = [];
      for (const n of cluster.nodes) if (n.running) texts.push(String(await n.call('INFO', 'commandstats')));
      return commandStats(texts);
    },
    stop: () => cluster.stop(),
  };
}

/** `scale.<i>:1|c` for the names of part `part` of `parts` (i % parts === part), 32 per datagram, NUL-ended for loadgen.c. */
function writePart(names: number, part: number, parts: number, file: string): { datagrams: number; metrics: number } {
  const chunks: string[] = [];
  let lines: string[] = [];
  let metrics = 0;
  for (let i = part; i < names; i += parts) {
    lines.push(`scale.${i}:1|c`);
    metrics++;
    if (lines.length === PER_DATAGRAM) {
      chunks.push(lines.join('\n') + '\0');
      lines = [];
    }
  }
  if (lines.length) chunks.push(lines.join('\n') + '\0');
  writeFileSync(file, chunks.join(''));
  return { datagrams: chunks.length, metrics };
}

/** The steady metrics' names as sent and as checked in Carbon (counters' stats_counts, timers' count). */
function steadyMetrics(): Array<{ line: (k: number) => string; carbon: string; proc: (procs: number) => number }> {
  const out: Array<{ line: (k: number) => string; carbon: string; proc: (procs: number) => number }> = [];
  for (let j = 0; j < STEADY_COUNTERS; j++) out.push({ line: () => `scale_steady.c${j}:1|c`, carbon: `stats_counts.scale_steady.c${j}`, proc: (p) => j % p });
  for (let j = 0; j < STEADY_TIMERS; j++) out.push({ line: (k) => `scale_steady.t${j}:${k % 100}|ms`, carbon: `stats.timers.scale_steady.t${j}.count`, proc: (p) => (j + 1) % p });
  return out;
}

export async function runConfig(c: Config, target: RedisTarget, work: string, log: (l: string) => void): Promise<ConfigResult> {
  const began = Date.now();
  const F = c.flushInterval;
  const label = `${short(c.names)} names, ${c.procs} proc${c.procs > 1 ? 's' : ''}, ${c.redis}, ${c.shards} shard${c.shards > 1 ? 's' : ''}`;
  const result: ConfigResult = {
    config: c, label, loadAvgStart: os.loadavg().map(r2), loadAvgEnd: [], periods: [],
    medians: { processingTimeMs: null, flushMs: null, usPerName: null, commitWallMs: null, stagesMs: {}, lagMs: null, timestampLagS: null, lines: null },
    steadyExact: false, kernelDrops: 0, procUdpDrops: 0, loss: 1, misplaced: 0, cpuPct: { tallyd: 0, loadgen: 0, redis: null }, redisTop: [], committedBy: [],
    loadgenMaxBehindMs: 0, warnings: {}, compactions: { count: 0, bytesIn: 0, bytesOut: 0, busyMs: 0, measured: 0 }, profiles: [], wallMs: 0,
  };
  const parts = Array.from({ length: c.procs }, (_, p) => {
    const file = path.join(work, `scale-${c.names}-${p}of${c.procs}.bin`);
    return { file, ...writePart(c.names, p, c.procs, file) };
  });
  const carbon = new CurveCarbon(c.names);
  await carbon.start();
  const prefix = `tallyd-bench:curve:${Math.random().toString(16).slice(2, 10)}:`;
  const profileDir = c.profile ? path.join(RESULTS_DIR, 'profiles', `scale-curve-${stamp()}`) : null;
  if (profileDir) mkdirSync(profileDir, { recursive: true });
  const servers: RunningServer[] = [];
  const steadySock = dgram.createSocket('udp4');
  let steadyTimer: NodeJS.Timeout | null = null;
  try {
    await target.reset();
    // One at a time: process 0 is up (and takes the lease) before the others start.
    for (let p = 0; p < c.procs; p++) {
      servers.push(await startServer('tallyd', carbon.port, {
        flushInterval: F, logLevel: 'debug', keyPrefix: prefix, keepKeys: true,
        redis: { ...target.redis, shards: c.shards },
        // 5M names is past the default bound of 2M a period, and one period of 5M names is ~370 MB of lines, past the
        // default outbox bound (256 MiB): room for OUTBOX_PERIODS periods, so a slow flush is measured, not the bound
        config: { maxNamesPerPeriod: 0, outboxMaxBytes: Math.max(DEFAULT_OUTBOX_MAX_BYTES, c.names * LINE_BYTES_PER_NAME * OUTBOX_PERIODS) },
        execArgv: p === 0 && profileDir ? ['--cpu-prof', '--cpu-prof-dir', profileDir] : [],
      }));
    }
    const ports = servers.map((s) => s.udpPort);

    // Steady metrics: their own timer, at fixed offsets inside each period; sent[ts][metric] is exact.
    const steady = steadyMetrics();
    const steadySent = new Map<number, number[]>();
    let k = 0;
    let steadyOn = true;
    const tick = () => {
      const now = Date.now();
      const phase = (now % F) / F;
      if (steadyOn && phase > STEADY_EDGE && phase < 1 - STEADY_EDGE) {
        const ts = (Math.floor(now / F) + 1) * (F / 1000);
        const counts = steadySent.get(ts) ?? steady.map(() => 0);
        steadySent.set(ts, counts);
        for (const [i, m] of steady.entries()) {
          steadySock.send(m.line(k), ports[m.proc(c.procs)] as number, '127.0.0.1');
          counts[i] = (counts[i] ?? 0) + 1;
        }
        k++;
      }
    };
    steadyTimer = setInterval(tick, STEADY_EVERY_MS);

    let b0 = Math.ceil(Date.now() / F) * F;
    if (b0 - Date.now() < 300) b0 += F;
    const loads = c.warmup + c.periods;
    log(`  [${label}] ${c.names.toLocaleString('en-US')} names a period over ${c.procs} UDP port(s), ${loads} loaded periods from ${new Date(b0).toISOString().slice(11, 19)} ...`);
    const sentByTs = new Map<number, number>();
    const cpu0 = servers.map((s) => cpuSeconds(s.pid));
    const redis0 = await target.cpuSeconds();
    let loadgenCpu = 0;
    let windowStart = 0;
    let stats0 = new Map<string, CommandStat>();
    for (let i = 0; i < loads; i++) {
      const start = b0 + i * F + START_AFTER_MS;
      await sleep(start - Date.now());
      if (i === c.warmup) {
        windowStart = start;
        stats0 = await target.commandStats();
      }
      const late = Date.now() - start;
      if (late > 100) log(`    period ${i}: load started ${late} ms late`);
      const reports: LoadgenReport[] = await Promise.all(parts.map((part, p) =>
        runLoadgen(part.file, ports[p] as number, part.datagrams / ((SPREAD * F) / 1000), part.datagrams)));
      const ts = (b0 + (i + 1) * F) / 1000;
      let sent = 0;
      for (const [p, r] of reports.entries()) {
        const part = parts[p]!;
        sent += r.sent >= part.datagrams ? part.metrics : r.sent * PER_DATAGRAM;
        if (i >= c.warmup) {
          loadgenCpu += r.cpu_user_s + r.cpu_sys_s;
          result.loadgenMaxBehindMs = Math.max(result.loadgenMaxBehindMs, Math.round(r.max_behind_ms));
        }
      }
      sentByTs.set(ts, sent);
      if (Date.now() > b0 + (i + 1) * F) log(`    period ${i}: loadgen ended past the boundary: its names spill into the next period`);
    }
    const windowEnd = b0 + loads * F;
    await sleep(windowEnd - Date.now());
    const windowS = (windowEnd - windowStart) / 1000;
    result.cpuPct.tallyd = r1((servers.reduce((a, s, i) => a + cpuSeconds(s.pid) - (cpu0[i] ?? 0), 0) / windowS) * 100);
    result.cpuPct.redis = r1((((await target.cpuSeconds()) - redis0) / windowS) * 100);
    result.cpuPct.loadgen = r1((loadgenCpu / windowS) * 100);
    steadyOn = false;

    // Wait until the last loaded period is in Carbon: every name, and statsd.processing_time (near its end).
    const lastTs = windowEnd / 1000;
    const complete = (ts: number) => {
      const p = carbon.periods.get(ts);
      return !!p && p.distinct >= (sentByTs.get(ts) ?? 0) && p.named.has('stats.statsd.processing_time');
    };
    const deadline = Date.now() + c.drainMs;
    while (!complete(lastTs) && Date.now() < deadline && servers.every((s) => s.alive())) await sleep(50);
    await sleep(500); // the period's trailing lines (graphiteStats) and anything re-sent
    // Where Redis spent its time from the first measured period's load to here: the measured periods' merges and
    // (roughly: the warm-up's flush is in, the last flush's delivery may not be) their flushes, µs per scale name.
    const stats1 = await target.commandStats();
    const perName = c.names * c.periods;
    result.redisTop = [...stats1]
      .map(([cmd, v]) => ({ cmd, calls: v.calls - (stats0.get(cmd)?.calls ?? 0), usec: v.usec - (stats0.get(cmd)?.usec ?? 0) }))
      .filter((x) => x.usec > 0)
      .sort((a, b) => b.usec - a.usec)
      .slice(0, 10)
      .map((x) => `${x.cmd} ${(x.usec / perName).toFixed(3)} µs/name (${x.calls} calls, ${Math.round(x.usec / Math.max(1, x.calls))} µs/call)`);
    result.procUdpDrops = ports.reduce((a, port) => a + (udpDrops(port) ?? 0), 0);
    for (const s of servers) for (const w of s.warnings) result.warnings[w] = (result.warnings[w] ?? 0) + 1;
    for (const x of servers.flatMap((s) => s.compactions)) {
      const k = result.compactions;
      k.count++;
      k.bytesIn += x.bytesIn;
      k.bytesOut += x.bytesOut;
      k.busyMs += x.busyMs;
      if (x.boundaryMs > b0 + c.warmup * F) k.measured++;
    }
    const dead = servers.findIndex((s) => !s.alive());
    if (dead >= 0) throw new Error(`tallyd process ${dead} exited:\n${servers[dead]!.output().slice(-2000)}`);
    if (!complete(lastTs)) result.error = `period ${lastTs} not complete in Carbon ${Math.round((Date.now() - windowEnd) / 1000)} s after the load`;

    // Per period: commits from every process's log (one leader today; a leader per shard later).
    const commits: Array<Commit & { proc: number }> = servers.flatMap((s, proc) => s.commits.map((x) => ({ ...x, proc })));
    commits.sort((a, b) => a.at - b.at);
    const steadyCheckFrom = (b0 + F) / 1000;
    for (let i = c.warmup; i < loads; i++) {
      const ts = (b0 + (i + 1) * F) / 1000;
      const p = carbon.periods.get(ts);
      const mine = commits.filter((x) => x.ts === ts);
      const prev = commits.filter((x) => x.ts < ts).at(-1);
      const lastCommit = mine.at(-1);
      const stages: Record<string, number> = {};
      for (const x of mine) for (const [st, ms] of Object.entries(x.stagesMs)) stages[st] = (stages[st] ?? 0) + ms;
      const sent = steadySent.get(ts) ?? steady.map(() => 0);
      const wrong = ts >= steadyCheckFrom
        ? steady.flatMap((m, j) => {
          const got = carbon.value(ts, m.carbon);
          return got === (sent[j] ?? 0) ? [] : [`${m.carbon} ${got ?? 'missing'} != ${sent[j] ?? 0}`];
        })
        : [];
      result.periods.push({
        ts,
        processingTimeMs: carbon.value(ts, 'stats.statsd.processing_time'),
        commitWallMs: lastCommit ? lastCommit.at - Math.max(ts * 1000, prev?.at ?? 0) : null,
        commits: mine.length,
        stagesMs: stages,
        flushMs: mine.length ? Math.max(...servers.map((_, proc) => mine.filter((x) => x.proc === proc).reduce((a, x) => a + Object.values(x.stagesMs).reduce((u, v) => u + v, 0), 0))) : null,
        lagMs: p && complete(ts) ? p.last - ts * 1000 : null,
        timestampLagS: carbon.value(ts, 'stats.gauges.statsd.timestamp_lag'),
        lines: p?.lines ?? 0,
        steadyExact: wrong.length === 0,
        steadyWrong: wrong,
        kernelDrops: carbon.value(ts, 'stats_counts.statsd.udp_kernel_drops') ?? 0,
        lateSamples: carbon.value(ts, 'stats_counts.statsd.late_samples') ?? 0,
        sent: sentByTs.get(ts) ?? 0,
        received: p?.sum ?? 0,
        duplicates: p?.duplicates ?? 0,
      });
      for (const x of mine) if (!result.committedBy.includes(x.proc)) result.committedBy.push(x.proc);
    }
    const rows = result.periods;
    const med = (f: (r: PeriodRow) => number | null) => {
      const xs = rows.map(f).filter((x): x is number => x !== null);
      return xs.length ? median(xs) : null;
    };
    const stageNames = [...new Set(rows.flatMap((r) => Object.keys(r.stagesMs)))];
    result.medians = {
      processingTimeMs: med((r) => r.processingTimeMs),
      flushMs: med((r) => r.flushMs),
      usPerName: null,
      commitWallMs: med((r) => r.commitWallMs),
      stagesMs: Object.fromEntries(stageNames.map((s) => [s, Math.round(med((r) => r.stagesMs[s] ?? null) ?? 0)])),
      lagMs: med((r) => r.lagMs),
      timestampLagS: med((r) => r.timestampLagS),
      lines: med((r) => r.lines),
    };
    if (result.medians.flushMs !== null) result.medians.usPerName = r2((result.medians.flushMs * 1000) / c.names);
    result.steadyExact = rows.length > 0 && rows.every((r) => r.steadyExact);
    result.kernelDrops = rows.reduce((a, r) => a + r.kernelDrops, 0);
    const sent = rows.reduce((a, r) => a + r.sent, 0);
    result.misplaced = sent > 0 ? rows.reduce((a, r) => a + Math.abs(r.sent - r.received), 0) / sent : 0;
    // Samples counted in another period may be in the one after the load: wait for it too before calling them lost.
    const after = lastTs + F / 1000;
    if (result.misplaced > 0) while (!carbon.periods.get(after)?.named.has('stats.statsd.processing_time') && Date.now() < deadline && servers.every((x) => x.alive())) await sleep(50);
    let sentAll = 0;
    let receivedAll = 0;
    for (const n of sentByTs.values()) sentAll += n;
    for (const [ts, p] of carbon.periods) if (ts > b0 / 1000 && ts <= after) receivedAll += p.sum;
    result.loss = sentAll > 0 ? Math.max(0, 1 - receivedAll / sentAll) : 1;
  } catch (err) {
    result.error = (err as Error).message;
  } finally {
    if (steadyTimer) clearInterval(steadyTimer);
    steadySock.close();
    result.loadAvgEnd = os.loadavg().map(r2);
    // The leader last: a follower stopping first hands it nothing to do.
    for (const s of [...servers].reverse()) await s.stop();
    await carbon.stop();
    await target.reset().catch(() => undefined);
    if (profileDir) result.profiles = readdirSync(profileDir).filter((f) => f.endsWith('.cpuprofile')).map((f) => path.join(profileDir, f));
    result.wallMs = Date.now() - began;
  }
  return result;
}

/**
 * `npm run bench -- --ci`'s plumbing check of this file: 1,000 names, 2 processes on the bench's own redis-server,
 * 2 s periods, one warm-up and one measured period (~15 s). No speed is judged; `error` says what failed.
 */
export async function tinyCurve(work: string): Promise<ConfigResult> {
  const target = await startTarget('single');
  try {
    return await runConfig({ names: 1000, procs: 2, redis: 'single', shards: 16, flushInterval: 2000, warmup: 1, periods: 1, profile: false, drainMs: 15_000 },
      target, work, () => undefined);
  } finally {
    await target.stop();
  }
}

/** One line per configuration, as the runner prints it. */
export function resultLine(r: ConfigResult): string {
  const md = r.medians;
  return `${r.error ? `ERROR ${r.error.split('\n')[0]}` : 'done'}: processing_time ${fmtMs(md.processingTimeMs)} ms, flush ${fmtMs(md.flushMs)} ms (${md.usPerName ?? '-'} µs/name), ` +
    `stages ${JSON.stringify(md.stagesMs)}, lag ${fmtMs(md.lagMs)} ms, lines ${fmtMs(md.lines)}, steady ${r.steadyExact ? 'exact' : 'NOT exact'}, ` +
    `drops ${r.kernelDrops}, misplaced ${(r.misplaced * 100).toFixed(3)} %, loss ${(r.loss * 100).toFixed(3)} %, CPU % tallyd ${r.cpuPct.tallyd} loadgen ${r.cpuPct.loadgen} Redis ${r.cpuPct.redis}, ` +
    `compactions ${r.compactions.count} (${r.compactions.measured} of measured periods; read ${fmtMs(r.compactions.bytesIn / 1e6)} MB, wrote ` +
    `${fmtMs(r.compactions.bytesOut / 1e6)} MB, ${fmtMs(r.compactions.busyMs)} ms busy), load ${r.loadAvgEnd.join(' ')} (${Math.round(r.wallMs / 1000)} s)`;
}

/** Each measured period as a line. */
export function periodLines(r: ConfigResult): string[] {
  return r.periods.map((p) => `period ${p.ts}: processing_time ${fmtMs(p.processingTimeMs)} ms, flush ${fmtMs(p.flushMs)} ms ` +
    `(${['read', 'build', 'compute', 'remember', 'encode', 'commit'].map((st) => p.stagesMs[st] ?? '-').join('/')}; ${p.commits} commit(s)), ` +
    `lag ${fmtMs(p.lagMs)} ms, timestamp_lag ${p.timestampLagS ?? '-'} s, lines ${fmtMs(p.lines)}, steady ${p.steadyExact ? 'exact' : 'NOT exact'}, ` +
    `kernel drops ${p.kernelDrops}, late samples ${p.lateSamples}, scale ${fmtMs(p.received)} of ${fmtMs(p.sent)}`);
}

// --- report ---

function fmtMs(x: number | null): string {
  return x === null ? '-' : Math.round(x).toLocaleString('en-US');
}

export function detailTable(rows: readonly ConfigResult[]): string {
  const head = ['names/period', 'procs', 'Redis', 'shards', 'periods', 'processing_time ms', 'flush ms', 'µs/name', 'stages ms (read/build/compute/remember/encode/commit)', 'commit after boundary ms',
    'lag after boundary ms', 'timestamp_lag s', 'lines/period', 'steady exact', 'kernel drops', 'late samples', 'misplaced %', 'loss %', 'CPU % tallyd/loadgen/Redis', 'load avg'];
  const cells = rows.map((r) => {
    const m = r.medians;
    const st = ['read', 'build', 'compute', 'remember', 'encode', 'commit'].map((s) => m.stagesMs[s] ?? '-').join('/');
    return [
      r.config.names.toLocaleString('en-US'), String(r.config.procs), r.config.redis, String(r.config.shards), String(r.periods.length),
      fmtMs(m.processingTimeMs), fmtMs(m.flushMs), m.usPerName === null ? '-' : m.usPerName.toFixed(2), st, fmtMs(m.commitWallMs), fmtMs(m.lagMs),
      m.timestampLagS === null ? '-' : String(m.timestampLagS), fmtMs(m.lines), r.steadyExact ? 'yes' : 'NO',
      `${r.kernelDrops}${r.procUdpDrops !== r.kernelDrops ? ` (socket ${r.procUdpDrops})` : ''}`, String(r.periods.reduce((a, p) => a + p.lateSamples, 0)),
      (r.misplaced * 100).toFixed(3), (r.loss * 100).toFixed(3),
      `${r.cpuPct.tallyd.toFixed(0)}/${r.cpuPct.loadgen.toFixed(0)}/${r.cpuPct.redis === null ? '-' : r.cpuPct.redis.toFixed(0)}`,
      `${r.loadAvgStart[0]} → ${r.loadAvgEnd[0]}`,
    ];
  });
  const notes = rows.flatMap((r) => [
    ...(r.error ? [`- ${r.label}: ERROR ${r.error.split('\n')[0]}`] : []),
    ...r.periods.flatMap((p) => (p.steadyExact ? [] : [`- ${r.label}, period ${p.ts}: ${p.steadyWrong.join('; ')}`])),
    ...(r.periods.some((p) => p.duplicates) ? [`- ${r.label}: ${r.periods.reduce((a, p) => a + p.duplicates, 0)} scale lines re-sent`] : []),
    ...Object.entries(r.warnings).map(([w, n]) => `- ${r.label}: tallyd warned ${n}x: ${w}`),
    ...(r.committedBy.length > 1 ? [`- ${r.label}: measured periods committed by processes ${r.committedBy.join(', ')}`] : []),
  ]);
  return [markdown(head, cells), ...notes].join('\n');
}

/** names x {1 proc, 2 procs} x {single, cluster}: flush ms (µs/name) and lag; 2 procs / 1 proc per name. */
export function matrixTable(rows: readonly ConfigResult[]): string {
  const names = [...new Set(rows.map((r) => r.config.names))];
  const targets = [...new Set(rows.map((r) => r.config.redis))];
  const procs = [...new Set(rows.map((r) => r.config.procs))].sort();
  const shards = [...new Set(rows.map((r) => r.config.shards))];
  const shardText = (s: number) => (shards.length > 1 ? `, ${s} shard${s > 1 ? 's' : ''}` : '');
  const head = ['names/period', ...shards.flatMap((s) => targets.flatMap((t) => [
    ...procs.map((p) => `${p} proc${p > 1 ? 's' : ''}, ${t}${shardText(s)}: ms (µs/name) / lag ms`),
    ...(procs.length > 1 ? [`${procs.at(-1)}/${procs[0]} µs/name, ${t}${shardText(s)}`] : []),
  ]))];
  const cells = names.map((n) => [n.toLocaleString('en-US'), ...shards.flatMap((s) => targets.flatMap((t) => {
    const find = (p: number) => rows.find((r) => r.config.names === n && r.config.redis === t && r.config.procs === p && r.config.shards === s);
    const cell = (p: number) => {
      const r = find(p);
      if (!r) return '-';
      const m = r.medians;
      return `${fmtMs(m.flushMs)} (${m.usPerName?.toFixed(2) ?? '-'}) / ${fmtMs(m.lagMs)}${r.error ? ' ERR' : ''}`;
    };
    const a = find(procs[0] ?? 1)?.medians.usPerName;
    const b = find(procs.at(-1) ?? 1)?.medians.usPerName;
    return [...procs.map(cell), ...(procs.length > 1 ? [a && b ? `${(b / a).toFixed(2)}x` : '-'] : [])];
  }))]);
  return markdown(head, cells);
}

function markdown(head: readonly string[], cells: readonly string[][]): string {
  const line = (c: readonly string[]) => `| ${c.join(' | ')} |`;
  return [line(head), line(head.map((_, i) => (i === 0 ? '---:' : '---:'))), ...cells.map(line)].join('\n');
}

// --- main ---

function list(text: string | undefined, fallback: string, what: string): number[] {
  return (text ?? fallback).split(',').filter(Boolean).map((x) => {
    const n = Number(x);
    if (!(Number.isInteger(n) && n > 0)) throw new Error(`--${what} wants positive integers, got ${x}`);
    return n;
  });
}

function short(n: number): string {
  return n >= 1e6 ? `${n / 1e6}M` : n >= 1e3 ? `${n / 1e3}k` : String(n);
}

function r1(x: number): number {
  return Math.round(x * 10) / 10;
}

function r2(x: number): number {
  return Math.round(x * 100) / 100;
}

function stamp(): string {
  return new Date().toISOString().replace(/[:.]/g, '-');
}

async function main(): Promise<number> {
  const { values: opt } = parseArgs({
    options: {
      names: { type: 'string' }, procs: { type: 'string' }, redis: { type: 'string' }, shards: { type: 'string' }, periods: { type: 'string' },
      warmup: { type: 'string' }, 'flush-interval': { type: 'string' }, drain: { type: 'string' }, profile: { type: 'boolean', default: false }, full: { type: 'boolean', default: false },
      'no-build': { type: 'boolean', default: false }, help: { type: 'boolean', short: 'h', default: false },
    },
  });
  if (opt.help) {
    process.stdout.write(USAGE);
    return 0;
  }
  const names = list(opt.names, opt.full ? '1000,10000,100000,1000000,5000000' : '10000,100000', 'names');
  const procs = list(opt.procs, '1,2', 'procs');
  const shards = list(opt.shards, '16', 'shards');
  const targets = (opt.redis ?? 'single,cluster').split(',').map((t) => {
    if (t !== 'single' && t !== 'cluster') throw new Error(`--redis: want single or cluster, got ${t}`);
    return t as Target;
  });
  const periods = list(opt.periods, opt.full ? '3' : '2', 'periods')[0] ?? 2;
  const warmup = opt.warmup === '0' ? 0 : (list(opt.warmup, '1', 'warmup')[0] ?? 1);
  const flushInterval = list(opt['flush-interval'], '10000', 'flush-interval')[0] ?? 10_000;
  const drainMs = opt.drain === undefined ? 2 * flushInterval + 60_000 : (list(opt.drain, '0', 'drain')[0] ?? 0) * 1000;

  const started = Date.now();
  const m = await machine();
  await closeRedis();
  const build = ensureBuilt(!opt['no-build']);
  buildLoadgen();
  const work = mkdtempSync(path.join(BUILD_DIR, 'curve-'));
  console.log(`scale curve: ${m.nproc} cores (${m.cpuModel}), node ${m.node}, tallyd ${m.commit}${m.srcDirty ? ' (src/ modified)' : ''}, ${build}; load average ${os.loadavg().map(r2).join(' ')}`);
  console.log(`  names ${names.join(', ')}; processes ${procs.join(', ')}; ${targets.join(', ')}; shards ${shards.join(', ')}; flushInterval ${flushInterval} ms, ` +
    `${warmup} warm-up + ${periods} measured periods; each name once a period (${PER_DATAGRAM} per datagram, over ${SPREAD * 100} % of it)`);
  const results: ConfigResult[] = [];
  const redisDescribed: string[] = [];
  let failed = false;
  try {
    for (const t of targets) {
      const target = await startTarget(t);
      redisDescribed.push(target.describe);
      console.log(`  ${target.describe}`);
      try {
        for (const n of names) {
          for (const s of shards) {
            for (const p of procs) {
              const r = await runConfig({ names: n, procs: p, redis: t, shards: s, flushInterval, warmup, periods, profile: opt.profile, drainMs }, target, work, (l) => console.log(l));
              results.push(r);
              for (const line of periodLines(r)) console.log(`      ${line}`);
              console.log(`    ${resultLine(r)}`);
              if (r.redisTop.length) console.log(`    redis, top commands: ${r.redisTop.join('; ')}`);
              if (r.error) failed = true;
              for (const f of r.profiles) {
                const top = spawnSync(process.execPath, ['--import', 'tsx', path.join(ROOT, 'bench', 'profile', 'profile-top.ts'), f, '25'], { cwd: ROOT, encoding: 'utf8' });
                console.log(top.stdout.trimEnd());
              }
            }
          }
        }
      } finally {
        await target.stop();
      }
    }
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
  console.log(`\n== scale curve, medians over ${periods} periods (after ${warmup} warm-up)\n${detailTable(results)}`);
  console.log(`\n== flush ms (µs/name) / lag after boundary ms, and 2 procs / 1 proc per name\n${matrixTable(results)}`);
  mkdirSync(RESULTS_DIR, { recursive: true });
  const file = path.join(RESULTS_DIR, `scale-curve-${stamp()}.json`);
  const doc = { startedAt: new Date(started).toISOString(), seconds: Math.round((Date.now() - started) / 1000), argv: process.argv.slice(2), machine: m, tallydBuild: build, redis: redisDescribed, results };
  writeFileSync(file, JSON.stringify(doc, null, 1));
  console.log(`\nresults: ${path.relative(ROOT, file)}; ${Math.round((Date.now() - started) / 1000)} s`);
  return failed ? 1 : 0;
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  main().then((code) => process.exit(code), (err: unknown) => {
    console.error(err instanceof Error ? err.message : err);
    process.exit(2);
  });
}
