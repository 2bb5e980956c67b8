/**
 * What the bench prints and saves: the machine, one table per mode (medians
 * over runs; tallyd/statsd, tallyd-w<N>/statsd and tallyd-w<N>/tallyd from
 * the same run), and a JSON file with every trial.
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { TYPES, type Mode } from './load.js';
import { median, type Bound, type SearchResult } from '../throughput/search.js';
import { redisServerInfo, ROOT, type ServerName } from './servers.js';
import type { TrialResult } from '../throughput/trial.js';

export const RESULTS_DIR = path.join(ROOT, 'bench', 'results');

export interface Machine {
  nproc: number;
  cpuModel: string;
  node: string;
  kernel: string;
  loadAvg1: number;
  redis: string;
  udpRmemDefault: number | null;
  udpRmemMax: number | null;
  commit: string | null;
  srcDirty: boolean | null;
}

export async function machine(): Promise<Machine> {
  const readNum = (f: string) => {
    try {
      return Number(readFileSync(f, 'utf8').trim());
    } catch {
      return null;
    }
  };
  const git = (...args: string[]) => {
    try {
      return execFileSync('git', args, { cwd: ROOT, encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
    } catch {
      return null;
    }
  };
  const status = git('status', '--porcelain', '--', 'src');
  return {
    nproc: os.availableParallelism(),
    cpuModel: os.cpus()[0]?.model ?? 'unknown',
    node: process.version,
    kernel: `${os.type()} ${os.release()}`,
    loadAvg1: Math.round((os.loadavg()[0] ?? 0) * 100) / 100,
    redis: (await redisServerInfo()).version,
    udpRmemDefault: readNum('/proc/sys/net/core/rmem_default'),
    udpRmemMax: readNum('/proc/sys/net/core/rmem_max'),
    commit: git('rev-parse', '--short', 'HEAD'),
    srcDirty: status === null ? null : status !== '',
  };
}

export function machineText(m: Machine, tallydRecvBuffer?: number): string {
  return [
    `machine: ${m.nproc} CPUs, ${m.cpuModel}, ${m.kernel}; node ${m.node}; redis ${m.redis}; load average ${m.loadAvg1}`,
    `tallyd: commit ${m.commit ?? '?'}${m.srcDirty ? ' + uncommitted changes in src/' : ''}; ` +
      `udp receive buffers: kernel default ${m.udpRmemDefault ?? '?'} B (statsd 0.9 uses it), max ${m.udpRmemMax ?? '?'} B (tallyd asks for ${tallydRecvBuffer ?? '8 MiB, its default'})`,
  ].join('\n');
}

export interface Summary {
  mode: string;
  server: ServerName;
  runs: number[];
  lossFreeRate: number;
  /** Lowest failing rate of any run: with lossFreeRate 0, the server lost data at every rate tried. */
  failedRate: number | null;
  /** '>=' when a run hit the generator's or --max-rate's ceiling. */
  atLeast: boolean;
  bounds: Bound[];
  /** Summed over the server's processes. */
  cpuPct: number;
  redisCpuPct: number | null;
  loadgenCpuPct: number;
  /** The sum of the processes' own peaks. */
  peakRssMB: number;
  /** Per process role (main; or primary, worker 0..), medians like the sums (which they need not add up to). */
  processes: { role: string; cpuPct: number; peakRssMB: number }[];
}

export function summarize(mode: string, server: ServerName, results: readonly SearchResult[]): Summary {
  const mine = results.filter((r) => r.mode === mode && r.server === server);
  const bests = mine.flatMap((r) => (r.best ? [r.best] : []));
  const redis = bests.flatMap((b) => (b.redisCpuPct === null ? [] : [b.redisCpuPct]));
  return {
    mode,
    server,
    runs: mine.map((r) => r.lossFreeRate),
    lossFreeRate: Math.round(median(mine.map((r) => r.lossFreeRate))),
    failedRate: mine.reduce<number | null>((m, r) => (r.failedRate === null ? m : m === null ? r.failedRate : Math.min(m, r.failedRate)), null),
    atLeast: mine.some((r) => r.bound === 'generator' || r.bound === 'max-rate'),
    bounds: mine.map((r) => r.bound),
    cpuPct: median(bests.map((b) => b.cpuPct)),
    redisCpuPct: redis.length ? median(redis) : null,
    loadgenCpuPct: median(bests.map((b) => b.loadgenCpuPct)),
    peakRssMB: median(bests.map((b) => b.peakRssMB)),
    processes: [...new Set(bests.flatMap((b) => b.processes.map((p) => p.role)))].map((role) => {
      const ps = bests.flatMap((b) => b.processes.filter((p) => p.role === role));
      return { role, cpuPct: median(ps.map((p) => p.cpuPct)), peakRssMB: median(ps.map((p) => p.peakRssMB)) };
    }),
  };
}

export function modeTitle(mode: Mode, names: number): string {
  const mix = TYPES.filter((t) => mode.mix[t] > 0);
  const what = mix.length === 1 ? `${mix[0]} only` : mix.map((t) => `${t} ${mode.mix[t]}`).join(' / ');
  if (mode.transport !== 'udp') {
    const sock = mode.transport === 'zmq-push' ? 'PUSH -> tallyd PULL' : 'PUB -> tallyd SUB';
    return `${mode.name}: ${what}, ${mode.perDatagram} items per zlib JSON message, ${names} names, ZeroMQ ${sock}`;
  }
  return `${mode.name}: ${what}, ${mode.perDatagram} per datagram, ${names} names per type, udp`;
}

/** One line per trial while the bench runs. */
export function progress(mode: string, run: number, t: TrialResult): void {
  const verdict = t.error ? `ERROR ${t.error.split('\n')[0]}` : t.pass ? 'pass' : 'FAIL';
  const extra = [
    t.generatorLimited ? `loadgen reached only ${t.achievedRate}/s` : '',
    t.backpressured ? `backpressure held PUSH to ${t.achievedRate}/s` : '',
    t.overNames ? `${t.overNames} names over-counted` : '',
    t.gauges.wrongLastValue ? `${t.gauges.wrongLastValue}/${t.gauges.names} gauges wrong` : '',
  ].filter(Boolean);
  console.log(
    `  [${mode} run ${run}] ${t.server.padEnd(9)} ${String(t.rate).padStart(9)}/s  loss ${(t.loss * 100).toFixed(3).padStart(7)} %  ` +
      `cpu ${t.cpuPct.toFixed(0).padStart(3)} %${t.processes.length > 1 ? ` (${t.processes.map((p) => p.cpuPct.toFixed(0)).join('+')})` : ''}  ` +
      `${t.redisCpuPct === null ? '' : `redis ${t.redisCpuPct.toFixed(0)} %  `}` +
      `loadgen ${t.loadgenCpuPct.toFixed(0)} %  ${t.blockedPct === null ? '' : `blocked ${t.blockedPct.toFixed(0)} %  `}` +
      `rss ${t.peakRssMB.toFixed(0)} MB  ${t.socketDrops ? `drops ${t.socketDrops}  ` : ''}${verdict}${extra.length ? ` (${extra.join('; ')})` : ''}`,
  );
}

const HEAD = ['server', 'loss-free metrics/s', 'runs', 'CPU %', 'Redis CPU %', 'loadgen CPU %', 'peak RSS MB'];
// ZeroMQ modes: metrics are items; "loadgen" is bench/lib/zmq-loadgen.ts (Node).

/** Server + Redis + loadgen above this share of all cores: the machine, not only the server, set the limit. */
const SATURATED = 0.85;

/** `udp`: a batched UDP summary from the same run to compare a ZeroMQ mode with (the target: at least the batched UDP rate). */
export function table(title: string, rows: readonly Summary[], nproc: number, zmq?: { udp: Summary | null }): string {
  const busy = (s: Summary) => s.cpuPct + (s.redisCpuPct ?? 0) + s.loadgenCpuPct > SATURATED * 100 * nproc;
  const cells = rows.map((s) => [
    s.server,
    s.lossFreeRate === 0 && s.failedRate !== null ? `< ${fmt(s.failedRate)}` : `${s.atLeast ? '>= ' : ''}${fmt(s.lossFreeRate)}${busy(s) ? ' *' : ''}`,
    s.runs.map(short).join(' '),
    s.cpuPct.toFixed(0),
    s.redisCpuPct === null ? '-' : s.redisCpuPct.toFixed(0),
    s.loadgenCpuPct.toFixed(0),
    s.peakRssMB.toFixed(0),
  ]);
  if (zmq) cells.push(['statsd', 'n/a (no ZeroMQ input)', '', '', '', '', '']);
  const widths = HEAD.map((h, i) => Math.max(h.length, ...cells.map((c) => (c[i] ?? '').length)));
  const line = (c: readonly string[]) => c.map((x, i) => (i === 0 || i === 2 ? x.padEnd(widths[i] ?? 0) : x.padStart(widths[i] ?? 0))).join('  ');
  const out = [`== ${title}`, line(HEAD), ...cells.map(line)];
  if (rows.some(busy)) {
    out.push(`* server + Redis + loadgen used over ${SATURATED * 100} % of all ${nproc} cores at this rate: the machine was saturated, the server may go higher`);
  }
  for (const r of rows.filter((x) => x.processes.length > 1)) {
    const each = r.processes.map((p) => `${p.role} ${p.cpuPct.toFixed(0)} % / ${p.peakRssMB.toFixed(0)} MB`).join(', ');
    out.push(`${r.server}: CPU and peak RSS are sums over its ${r.processes.length} processes (${each})`);
  }
  out.push(...ratios(rows).map(([what, r]) => `${what}: ${r}`));
  const t = rows.find((r) => r.server === 'tallyd');
  if (zmq && t) {
    const u = zmq.udp;
    out.push(u ? `tallyd ${t.mode} / tallyd ${u.mode} (same run; target >= 1): ${ratio(t, u, t.mode, u.mode)}` : 'no batched UDP mode (counters-32 or mixed-32) in this run to compare with');
  }
  return out.join('\n');
}

/** [label, ratio] of tallyd/statsd, and of every tallyd-w<N> against statsd and tallyd, among these rows. */
export function ratios(rows: readonly Summary[]): [string, string][] {
  const by = (name: string) => rows.find((r) => r.server === name);
  const out: [string, string][] = [];
  for (const a of rows.filter((r) => r.server !== 'statsd')) {
    for (const b of [by('statsd'), a.server === 'tallyd' ? undefined : by('tallyd')]) {
      if (b) out.push([`${a.server}/${b.server}`, ratio(a, b, a.server, b.server)]);
    }
  }
  return out;
}

export function ratio(t: Summary, s: Summary, tName = 'tallyd', sName = 'statsd'): string {
  if (s.lossFreeRate === 0) return `n/a (${sName} lost data at every rate tried)`;
  if (t.lossFreeRate === 0) return `n/a (${tName} lost data at every rate tried)`;
  const r = (t.lossFreeRate / s.lossFreeRate).toFixed(2);
  if (t.atLeast && s.atLeast) return `n/a (both hit the load generator's ceiling; ${r}x is a lower bound of nothing)`;
  return `${t.atLeast ? '>= ' : s.atLeast ? '<= ' : ''}${r}x`;
}

export function saveJson(doc: unknown): string {
  mkdirSync(RESULTS_DIR, { recursive: true });
  const stamp = new Date().toISOString().replace(/[:.]/g, '-');
  const file = path.join(RESULTS_DIR, `bench-${stamp}.json`);
  const text = JSON.stringify(doc, null, 2) + '\n';
  writeFileSync(file, text);
  writeFileSync(path.join(RESULTS_DIR, 'latest.json'), text);
  return file;
}

function fmt(n: number): string {
  return Math.round(n).toLocaleString('en-US');
}

function short(n: number): string {
  if (n >= 1e6) return `${(n / 1e6).toPrecision(3)}M`;
  if (n >= 1e3) return `${(n / 1e3).toPrecision(3)}k`;
  return String(n);
}
