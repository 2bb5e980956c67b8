/**
 * One trial: a fresh Carbon tally and a fresh server, `rate` metrics/s of the
 * mode's corpus for `durationS`, then wait for the flush that holds
 * everything received and compare Carbon's totals with the exact totals of
 * what loadgen sent. Nothing is taken from the servers' own counters.
 */
import { CarbonTally } from '../lib/carbon-tally.js';
import type { Corpus, Totals } from '../lib/load.js';
import { runLoadgen, startZmqSender, type LoadgenReport, type Sender } from '../lib/loadgen.js';
import { cpuSecondsEach, FLUSH_INTERVAL, isTallyd, peakRssBytes, redisCpuSeconds, startServer, udpDrops, type ServerName, type ServerOptions, type StopResult } from '../lib/servers.js';

/** Loss at or above this fails a trial (0.1 %). */
export const MAX_LOSS = 0.001;
/** Below this share of the target rate the generator, not the server, set the pace. */
const MIN_ACHIEVED = 0.97;
/** The load starts this long before a flush. */
const LEAD_MS = 1000;
/** A flush burst is complete after this much silence. */
const QUIET_MS = 450;
/** A PUSH generator that spent more than this share of the window waiting on a full queue was held back by the server. */
const BACKPRESSURE_SHARE = 0.05;

export interface TrialResult {
  server: ServerName;
  mode: string;
  /** Target metrics/s. */
  rate: number;
  durationS: number;
  datagramsSent: number;
  metricsSent: number;
  /** Metrics/s loadgen really reached. */
  achievedRate: number;
  /** loadgen fell short of the target rate on its own (not held back by the server). */
  generatorLimited: boolean;
  /** ZeroMQ PUSH: the server's backpressure held the generator below the target rate (a fail: nothing is lost, it is slower). */
  backpressured: boolean;
  /** ZeroMQ: % of the window the generator waited on a full queue; null over UDP. */
  blockedPct: number | null;
  /** Over counters (sum), timers (count) and sets (members), which add up across flushes. */
  expected: { c: number; ms: number; s: number };
  received: { c: number; ms: number; s: number };
  loss: number;
  /** Names whose Carbon total is above what was sent: a double count. */
  overNames: number;
  gauges: { names: number; wrongLastValue: number };
  pass: boolean;
  /** % of one core over the send window, summed over the server's processes (tallyd-w<N>: the primary and its workers). */
  cpuPct: number;
  redisCpuPct: number | null;
  loadgenCpuPct: number;
  /** The sum of each process's own peak (VmHWM): at most what they held at once, since the peaks need not coincide. */
  peakRssMB: number;
  /** Per process (one for tallyd and statsd; primary, worker 0.. for tallyd-w<N>). */
  processes: ProcessUsage[];
  /** UDP datagrams the kernel dropped on the server's socket (receive buffer full), from its start to the end of the drain; null for ZeroMQ. */
  socketDrops: number | null;
  /** How the server stopped after the trial (tallyd: SIGTERM; an unclean stop is an error). */
  stop: StopResult | null;
  drainMs: number;
  /** How the flush times were known, and how many flushes fell in the send window (duration / 2 s expected). */
  flushPhase: 'predicted' | 'observed' | null;
  flushesInWindow: number;
  /** When each flush's lines began to arrive, ms after the first datagram. */
  flushArrivalsMs: number[];
  carbonLines: number;
  malformedLines: number;
  loadgen: LoadgenReport | null;
  /** The whole trial, start-up to clean-up. */
  wallMs: number;
  error?: string;
}

export interface ProcessUsage {
  role: string;
  pid: number;
  cpuPct: number;
  peakRssMB: number;
}

export interface TrialSpec {
  server: ServerName;
  corpus: Corpus;
  corpusFile: string;
  rate: number;
  durationS: number;
  serverOptions?: ServerOptions;
}

export async function runTrial(spec: TrialSpec): Promise<TrialResult> {
  const { corpus, rate, durationS, server: name } = spec;
  const per = corpus.mode.perDatagram;
  const began = Date.now();
  const count = Math.max(1, Math.round((rate * durationS) / per));
  const transport = corpus.mode.transport;
  const zmqType = transport === 'zmq-push' ? 'push' : transport === 'zmq-pub' ? 'pub' : null;
  const carbon = new CarbonTally(corpus.names);
  await carbon.start();
  const options = { ...spec.serverOptions, ...(zmqType ? { zmq: zmqType === 'push' ? ('pull' as const) : ('sub' as const) } : {}) };
  const server = await startServer(name, carbon.port, options).catch(async (err: unknown) => {
    await carbon.stop();
    throw err;
  });
  const base = emptyResult(spec);
  let sender: Sender | null = null;
  try {
    if (zmqType) {
      // Connected (and, for PUB, subscribed: the slow joiner is over) before the window opens.
      sender = await startZmqSender(spec.corpusFile, server.zmqEndpoint ?? '', zmqType, rate / per, count, durationS * 2 + 2);
    }
    // Start the load 1 s before a flush: with a duration of k flush
    // intervals the window holds k flushes at the same phases for either
    // server, and the flush after it comes 1 s after the last datagram.
    let phase = server.flushPhaseMs;
    if (phase === null) {
      const b = await waitBurst(carbon, 0, Date.now() + FLUSH_INTERVAL + 1500, server.alive);
      if (!b) throw new Error(`${name} did not flush within ${FLUSH_INTERVAL + 1500} ms of starting`);
      phase = b.start % FLUSH_INTERVAL;
    }
    const earliest = Date.now() + 150;
    const wait = (((phase - LEAD_MS - earliest) % FLUSH_INTERVAL) + FLUSH_INTERVAL) % FLUSH_INTERVAL;
    await sleep(earliest + wait - Date.now());
    const sendStart = Date.now();
    const tallyd = isTallyd(name);
    const cpu0 = cpuSecondsEach(server.processes);
    const redis0 = tallyd ? await redisCpuSeconds() : 0;
    const report = sender ? await sender.go() : await runLoadgen(spec.corpusFile, server.udpPort, rate / per, count);
    const sendEnd = Date.now();
    const cpu1 = cpuSecondsEach(server.processes);
    const redis1 = tallyd ? await redisCpuSeconds() : 0;
    const window = report.elapsed_s;
    const expected = corpus.expected(report.sent);
    const check = () => compare(expected, carbon.received, corpus.names);

    // Wait for a flush that began after everything sent was surely merged;
    // if it shows loss near the limit, give one more flush a chance (a late
    // merge); far above the limit (an overload probe) it can't change the verdict.
    const settleAt = sendEnd + server.settleMs;
    const first = await waitBurst(carbon, settleAt, sendEnd + 3 * FLUSH_INTERVAL + 5000, server.alive);
    let c = check();
    if (first && c.loss >= MAX_LOSS && c.loss < 0.5 && server.lateFlushes && server.alive()) {
      await waitBurst(carbon, first.end + 1, first.end + FLUSH_INTERVAL + 1500, server.alive);
      c = check();
    }
    if (!server.alive()) throw new Error(`${name} exited (or a worker died) during the trial:\n${server.output().slice(-2000)}`);
    const socketDrops = zmqType ? null : udpDrops(server.udpPort);
    const processes = server.processes.map((p, i) => ({
      role: p.role,
      pid: p.pid,
      cpuPct: round1((((cpu1[i] ?? 0) - (cpu0[i] ?? 0)) / window) * 100),
      peakRssMB: round1(peakRssBytes(p.pid) / 2 ** 20),
    }));
    const achieved = report.sent * per / window;
    const short = report.sent < count || achieved < rate * MIN_ACHIEVED;
    const backpressured = short && zmqType === 'push' && (report.blocked_s ?? 0) > BACKPRESSURE_SHARE * window;
    return Object.assign(base, {
      datagramsSent: report.sent,
      metricsSent: report.sent * per,
      achievedRate: Math.round(achieved),
      generatorLimited: short && !backpressured,
      backpressured,
      blockedPct: report.blocked_s === undefined ? null : round1((report.blocked_s / window) * 100),
      ...c,
      pass: c.loss < MAX_LOSS && c.overNames === 0 && report.sent === count && !backpressured,
      cpuPct: round1(((sum(cpu1) - sum(cpu0)) / window) * 100),
      redisCpuPct: tallyd ? round1(((redis1 - redis0) / window) * 100) : null,
      loadgenCpuPct: round1(((report.cpu_user_s + report.cpu_sys_s) / window) * 100),
      peakRssMB: round1(sum(processes.map((p) => p.peakRssMB))),
      processes,
      socketDrops,
      drainMs: Date.now() - sendEnd,
      flushPhase: server.flushPhaseMs === null ? 'observed' : 'predicted',
      flushesInWindow: carbon.bursts.filter((b) => b.start >= sendStart && b.start <= sendEnd).length,
      flushArrivalsMs: carbon.bursts.filter((b) => b.start >= sendStart - FLUSH_INTERVAL).map((b) => b.start - sendStart),
      carbonLines: carbon.lines,
      malformedLines: carbon.malformed,
      loadgen: report,
      ...(first ? {} : { error: 'no flush arrived after the load' }),
    });
  } catch (err) {
    return Object.assign(base, { error: (err as Error).message });
  } finally {
    sender?.kill();
    const stop = await server.stop();
    base.stop = stop;
    if (!stop.clean) base.error ??= `${name} did not stop cleanly after SIGTERM (exit ${stop.code ?? stop.signal}, ${stop.ms} ms)`;
    await carbon.stop();
    base.wallMs = Date.now() - began; // base is the object returned above
  }
}

/** Resolves with the first burst that starts at or after `after` once it has gone quiet, or null at the deadline. */
async function waitBurst(carbon: CarbonTally, after: number, deadline: number, alive: () => boolean) {
  for (;;) {
    const now = Date.now();
    const burst = carbon.bursts.find((b) => b.start >= after);
    if (burst && now - burst.end >= QUIET_MS) return burst;
    if (now > deadline || !alive()) return null;
    await sleep(50);
  }
}

/** Carbon's totals against what was sent: loss over counters, timers and sets, double counts, wrong gauges. */
export function compare(expected: Totals, received: Totals, names: number) {
  const e = { c: 0, ms: 0, s: 0 };
  const r = { c: 0, ms: 0, s: 0 };
  let overNames = 0;
  let gaugeNames = 0;
  let wrongGauges = 0;
  for (let i = 0; i < names; i++) {
    for (const t of ['c', 'ms', 's'] as const) {
      const want = expected[t][i] ?? 0;
      const got = received[t][i] ?? 0;
      e[t] += want;
      r[t] += got;
      if (got > want + 1e-9) overNames++;
    }
    const g = expected.g[i] ?? NaN;
    if (!Number.isNaN(g)) {
      gaugeNames++;
      if (received.g[i] !== g) wrongGauges++;
    }
  }
  const want = e.c + e.ms + e.s;
  const got = r.c + r.ms + r.s;
  return {
    expected: e,
    received: r,
    // Gauges alone add nothing up: their loss is the share of wrong last values.
    loss: want > 0 ? Math.max(0, 1 - got / want) : gaugeNames > 0 ? wrongGauges / gaugeNames : 0,
    overNames,
    gauges: { names: gaugeNames, wrongLastValue: wrongGauges },
  };
}

function emptyResult(spec: TrialSpec): TrialResult {
  return {
    server: spec.server,
    mode: spec.corpus.mode.name,
    rate: spec.rate,
    durationS: spec.durationS,
    datagramsSent: 0,
    metricsSent: 0,
    achievedRate: 0,
    generatorLimited: false,
    backpressured: false,
    blockedPct: null,
    expected: { c: 0, ms: 0, s: 0 },
    received: { c: 0, ms: 0, s: 0 },
    loss: 1,
    overNames: 0,
    gauges: { names: 0, wrongLastValue: 0 },
    pass: false,
    cpuPct: 0,
    redisCpuPct: null,
    loadgenCpuPct: 0,
    peakRssMB: 0,
    processes: [],
    socketDrops: null,
    stop: null,
    drainMs: 0,
    flushPhase: null,
    flushesInWindow: 0,
    flushArrivalsMs: [],
    carbonLines: 0,
    malformedLines: 0,
    loadgen: null,
    wallMs: 0,
  };
}

function sum(xs: readonly number[]): number {
  return xs.reduce((a, b) => a + b, 0);
}

function round1(x: number): number {
  return Math.round(x * 10) / 10;
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}
