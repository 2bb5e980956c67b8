/**
 * The servers under test as child processes, each on free loopback ports and
 * sending to the trial's Carbon: tallyd (`node dist/main.js`, a fresh Redis
 * key prefix, removed afterwards), tallyd-w<N> (the same with `workers: N`:
 * a node:cluster primary and N workers sharing the UDP socket) and Etsy
 * statsd 0.9 (the devDependency). Plus what the bench reads about processes
 * from /proc: CPU seconds (utime + stime), peak RSS (VmHWM), a UDP socket's
 * drop count, and Redis's own CPU.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Redis } from 'ioredis';
import { freePort, freeUdpPort } from '../../test/helpers/carbon.js';
import { cleanup } from '../../test/helpers/redis.js';

export const ROOT = path.resolve(import.meta.dirname, '..', '..');
export const REDIS_URL = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';
/** `tallyd-w<N>`: tallyd with `workers: N` (2..16). */
export type ServerName = 'tallyd' | 'statsd' | `tallyd-w${number}`;
/** The servers of a default run (any tallyd-w<N> on request). */
export const SERVERS: readonly ServerName[] = ['tallyd', 'tallyd-w2', 'statsd'];
const MAX_WORKERS = 16;

/** A ServerName, or null: tallyd, statsd, tallyd-w2 .. tallyd-w16. */
export function parseServer(text: string): ServerName | null {
  if (text === 'tallyd' || text === 'statsd') return text;
  const m = /^tallyd-w(\d+)$/.exec(text);
  const n = Number(m?.[1]);
  return m && n >= 2 && n <= MAX_WORKERS && String(n) === m[1] ? (text as ServerName) : null;
}

export function isTallyd(name: ServerName): boolean {
  return name !== 'statsd';
}

/** tallyd's `workers` setting: 1 for tallyd, N for tallyd-w<N>; 0 for statsd. */
export function tallydWorkers(name: ServerName): number {
  if (name === 'statsd') return 0;
  return name === 'tallyd' ? 1 : Number(name.slice('tallyd-w'.length));
}

export const FLUSH_INTERVAL = 2000;
const TALLYD_BATCH_INTERVAL = 200;
/** ms after tallyd received a sample before a flush surely holds it: two batch merges and a margin. */
export const TALLYD_SETTLE_MS = TALLYD_BATCH_INTERVAL * 2 + 300;
/** statsd is spawned only in the first this-many ms of a second (see flushPhaseMs). */
const STATSD_SPAWN_WINDOW_MS = 150;

/** One OS process of a server: tallyd-w<N> has a primary and N workers. */
export interface ServerProcess {
  /** `main` (a single-process server), `primary`, or `worker <i>` (cluster index). */
  readonly role: string;
  readonly pid: number;
}

/** How a server's process ended when the bench stopped it. */
export interface StopResult {
  code: number | null;
  signal: string | null;
  /** From the signal to the exit of every process. */
  ms: number;
  /** tallyd: exit code 0 after SIGTERM, every worker gone, no SIGKILL needed; statsd (always SIGKILLed): true. */
  clean: boolean;
}

export interface RunningServer {
  readonly name: ServerName;
  /** The process the bench spawned (tallyd-w<N>: the cluster primary). */
  readonly pid: number;
  /** Every process whose CPU and RSS count: [main], or [primary, worker 0, .., worker N-1]. */
  readonly processes: readonly ServerProcess[];
  readonly udpPort: number;
  /** ms after the last datagram before a flush surely holds everything received. */
  readonly settleMs: number;
  /**
   * Whether data can still reach a later flush than the first one after
   * settleMs (tallyd: a merge into Redis that was slow or queued). statsd
   * flushes from memory, so its first flush after settling is final.
   */
  readonly lateFlushes: boolean;
  /**
   * Flushes happen at Date.now() values congruent to this mod FLUSH_INTERVAL,
   * null if unknown. tallyd: wall-clock multiples (0). statsd 0.9: its grid is
   * Math.round(start-up ms / 1000) * 1000 + k * flushInterval, so the bench
   * starts it early in a second, when that rounding goes down.
   */
  readonly flushPhaseMs: number | null;
  /** tallyd's Redis key prefix (null for statsd). */
  readonly keyPrefix: string | null;
  /** tcp://127.0.0.1:<port> of tallyd's ZeroMQ socket, when asked for. */
  readonly zmqEndpoint: string | null;
  /** Periods committed, from tallyd's debug log (empty at other levels). */
  readonly commits: readonly Commit[];
  /** tallyd's warn and error log lines as `msg: err` (at debug level only; the first 100). */
  readonly warnings: readonly string[];
  /** The leaders' compactions of open periods, from tallyd's debug log (`compacted an open period's parts`), in log order. */
  readonly compactions: readonly Compaction[];
  output(): string;
  /** The spawned process runs and (tallyd-w<N>) no worker died since the start. */
  alive(): boolean;
  /**
   * Stop (tallyd: SIGTERM to the process; a cluster primary forwards it and
   * waits for its workers; statsd: SIGKILL), then remove the config and
   * tallyd's Redis keys. Resolves once every process is gone.
   */
  stop(): Promise<StopResult>;
}

export interface ServerOptions {
  /** tallyd's servers[].recvBufferSize; statsd 0.9 can't set one (the kernel default, net.core.rmem_default). */
  tallydRecvBuffer?: number;
  /** tallyd: also bind a ZeroMQ socket of this type (aggregate mode) on a free port. */
  zmq?: 'pull' | 'sub';
  /** Default FLUSH_INTERVAL. */
  flushInterval?: number;
  /** tallyd's log level (default warn); at debug, `period committed` lines are parsed into RunningServer.commits. */
  logLevel?: 'warn' | 'debug';
  /** tallyd: this key prefix instead of a fresh one (processes sharing a prefix act as one). */
  keyPrefix?: string;
  /** tallyd: the `redis` section's url or nodes and shards (default: REDIS_URL, tallyd's default shards). */
  redis?: { url?: string; nodes?: readonly string[]; shards?: number };
  /** tallyd: more top-level config keys (e.g. maxNamesPerPeriod). */
  config?: Record<string, unknown>;
  /** node's own flags before dist/main.js (e.g. --cpu-prof). */
  execArgv?: readonly string[];
  /** tallyd: stop() leaves the Redis keys to the caller (shared by several processes, or on a Redis Cluster). */
  keepKeys?: boolean;
}

/** A `compacted an open period's parts` log line of tallyd's flusher (debug level). */
export interface Compaction {
  time: number | string;
  boundaryMs: number;
  bytesIn: number;
  bytesOut: number;
  bytesNow: number;
  busyMs: number;
}

/** A `period committed` log line of tallyd's flusher (debug level). */
export interface Commit {
  /** The period's boundary, unix seconds (its lines' timestamp). */
  ts: number;
  /** Date.now() when the commit was logged: rotate, read, compute and commit are done. */
  at: number;
  /** Lines of the period; null: tallyd's log line no longer says (since 37235b8 it logs chunks only). */
  lines: number | null;
  chunks: number;
  /** Wall ms of each step (read, build, remember, encode, commit), from the flusher's log line. */
  stagesMs: Record<string, number>;
}

export async function startServer(name: ServerName, carbonPort: number, o: ServerOptions = {}): Promise<RunningServer> {
  const tallyd = isTallyd(name);
  const workers = tallydWorkers(name);
  if (o.zmq && name !== 'tallyd') throw new Error(`${name} has no ZeroMQ input${tallyd ? ' in the bench (only worker 0 binds ZeroMQ)' : ''}`);
  const udpPort = await freeUdpPort();
  const mgmtPort = await freePort();
  const zmqPort = o.zmq ? await freePort() : 0;
  const zmqEndpoint = o.zmq ? `tcp://127.0.0.1:${zmqPort}` : null;
  const dir = mkdtempSync(path.join(tmpdir(), `tallyd-bench-${name}-`));
  const common = {
    mgmt_address: '127.0.0.1',
    mgmt_port: mgmtPort,
    graphiteHost: '127.0.0.1',
    graphitePort: carbonPort,
    flushInterval: o.flushInterval ?? FLUSH_INTERVAL,
  };
  // A cluster logs "all workers are up" (and each worker "tallyd is up") at info.
  const logLevel = o.logLevel ?? (workers > 1 ? 'info' : 'warn');
  let file: string;
  let args: string[];
  let keyPrefix: string | null = null;
  if (tallyd) {
    keyPrefix = o.keyPrefix ?? `tallyd-bench:${randomBytes(4).toString('hex')}:`;
    file = path.join(dir, 'config.json');
    const cfg = {
      ...common,
      // tallyd binds its servers in order: the udp one, which the bench waits for, last.
      servers: [
        ...(o.zmq ? [{ server: 'zmq', bind: zmqEndpoint, type: o.zmq, mode: 'aggregate', prefix: '' }] : []),
        { server: 'udp', address: '127.0.0.1', port: udpPort, ...(o.tallydRecvBuffer ? { recvBufferSize: o.tallydRecvBuffer } : {}) },
      ],
      batchInterval: TALLYD_BATCH_INTERVAL,
      ...(workers > 1 ? { workers } : {}),
      redis: { ...(o.redis?.nodes ? { nodes: o.redis.nodes } : { url: o.redis?.url ?? REDIS_URL }), keyPrefix, ...(o.redis?.shards ? { shards: o.redis.shards } : {}) },
      log: { level: logLevel },
      ...o.config,
    };
    writeFileSync(file, JSON.stringify(cfg, null, 2));
    args = [...(o.execArgv ?? []), path.join(ROOT, 'dist', 'main.js'), file];
  } else {
    file = path.join(dir, 'config.js');
    // statsd evaluates the file as a JS object literal; JSON is one.
    const cfg = { ...common, port: udpPort, address: '127.0.0.1', backends: ['./backends/graphite'] };
    writeFileSync(file, JSON.stringify(cfg, null, 2));
    args = [path.join(ROOT, 'node_modules', 'statsd', 'stats.js'), file];
  }
  if (name === 'statsd' && Date.now() % 1000 > STATSD_SPAWN_WINDOW_MS) await sleep(1000 - (Date.now() % 1000));
  const spawnedAt = Date.now();
  const proc = spawn(process.execPath, args, { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  const commits: Commit[] = [];
  const warnings: string[] = [];
  const compactions: Compaction[] = [];
  /** Cluster: worker index -> pid, from each worker's "tallyd is up" line (the workers share our pipes). */
  const workerPids = new Map<number, number>();
  let allUp = false;
  let workerDied = false;
  let partial = '';
  const keep = (d: Buffer) => {
    const text = d.toString();
    out = (out + text).slice(-20_000);
    if (logLevel !== 'debug' && workers < 2) return;
    const lines = (partial + text).split('\n');
    partial = lines.pop() ?? '';
    for (const l of lines) {
      if (l.includes('"period committed"')) commits.push(parseCommit(l));
      else if (l.includes('"compacted an open period\'s parts"')) compactions.push(JSON.parse(l) as Compaction);
      else if (l.includes('"all workers are up"')) allUp = true;
      else if (l.includes('"tallyd is up"')) workerUp(l, workerPids);
      else if (l.includes('"worker died')) workerDied = true;
      if (logLevel === 'debug' && /"level":"(warn|error|fatal)"/.test(l) && warnings.length < 100) warnings.push(warningText(l));
    }
  };
  proc.stdout?.on('data', keep);
  proc.stderr?.on('data', keep);
  const exited = new Promise<void>((resolve) => proc.once('exit', () => resolve()));
  const running = () => proc.exitCode === null && proc.signalCode === null;
  const alive = () => running() && !workerDied;
  let stopping: Promise<StopResult> | null = null;
  const stop = (): Promise<StopResult> => {
    stopping ??= (async () => {
      const began = Date.now();
      let killed = false;
      if (running()) {
        proc.kill(tallyd ? 'SIGTERM' : 'SIGKILL');
        // A cluster primary gives its workers 15 s before it SIGKILLs them.
        const timer = setTimeout(() => {
          killed = true;
          proc.kill('SIGKILL');
        }, workers > 1 ? 20_000 : 8000);
        await exited;
        clearTimeout(timer);
      }
      // The primary exits after its workers; make sure none outlived it (a SIGKILLed primary can't wait).
      const leftover = await awaitGone([...workerPids.values()], 2000);
      for (const pid of leftover) killIfNode(pid);
      const result: StopResult = {
        code: proc.exitCode,
        signal: proc.signalCode,
        ms: Date.now() - began,
        clean: !tallyd || (!killed && proc.exitCode === 0 && leftover.length === 0),
      };
      rmSync(dir, { recursive: true, force: true });
      if (keyPrefix && !o.keepKeys) await cleanup(keyPrefix, o.redis?.url ?? REDIS_URL);
      return result;
    })();
    return stopping;
  };
  let processes: ServerProcess[] = [{ role: 'main', pid: proc.pid ?? 0 }];
  try {
    await waitUdpBound(udpPort, proc, () => out);
    if (workers > 1) {
      await waitUntil(() => allUp && workerPids.size === workers, proc, () => out, `${workers} workers up ("all workers are up" and each worker's "tallyd is up")`);
      processes = [{ role: 'primary', pid: proc.pid ?? 0 }, ...[...workerPids].sort((a, b) => a[0] - b[0]).map(([i, pid]) => ({ role: `worker ${i}`, pid }))];
      const children = childPids(proc.pid ?? 0);
      const strays = processes.slice(1).filter((p) => children !== null && !children.includes(p.pid));
      if (strays.length) throw new Error(`${name}: worker pids ${strays.map((p) => p.pid).join(', ')} from the log are not children of ${proc.pid} (${children?.join(', ')})`);
    }
  } catch (err) {
    await stop();
    throw err;
  }
  // statsd reads its start-up time while loading, well before it listens; if
  // even listening came before the half second, the rounding went down.
  const readyAt = Date.now();
  const statsdPhase = readyAt % 1000 < 500 && readyAt - spawnedAt < 500 ? (Math.floor(spawnedAt / 1000) * 1000) % FLUSH_INTERVAL : null;
  return {
    name,
    pid: proc.pid ?? 0,
    processes,
    udpPort,
    settleMs: tallyd ? TALLYD_SETTLE_MS : 300,
    lateFlushes: tallyd,
    flushPhaseMs: tallyd ? 0 : statsdPhase,
    keyPrefix,
    zmqEndpoint,
    commits,
    warnings,
    compactions,
    output: () => out,
    alive,
    stop,
  };
}

function workerUp(line: string, pids: Map<number, number>): void {
  try {
    const j = JSON.parse(line) as { pid?: number; worker?: number };
    if (typeof j.pid === 'number' && typeof j.worker === 'number') pids.set(j.worker, j.pid);
  } catch {
    // not a whole JSON line: the readiness wait times out and prints the output
  }
}

/** Children of a process (/proc/<pid>/task/<pid>/children: those forked by its main thread), or null where the kernel lacks the file. */
function childPids(pid: number): number[] | null {
  try {
    return readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim().split(/\s+/).filter(Boolean).map(Number);
  } catch {
    return null;
  }
}

function exists(pid: number): boolean {
  try {
    // A zombie has exited: its parent (gone with it) would have reaped it.
    return !/^State:\s+Z/m.test(readFileSync(`/proc/${pid}/status`, 'utf8'));
  } catch {
    return false;
  }
}

/** Waits up to timeoutMs for the pids to exit; returns those still there. */
async function awaitGone(pids: readonly number[], timeoutMs: number): Promise<number[]> {
  const deadline = Date.now() + timeoutMs;
  let left = pids.filter(exists);
  while (left.length && Date.now() < deadline) {
    await sleep(20);
    left = left.filter(exists);
  }
  return left;
}

/** SIGKILL a leftover worker, if the pid is still a node running tallyd (not a reused pid). */
function killIfNode(pid: number): void {
  try {
    if (readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes(path.join('dist', 'main.js'))) process.kill(pid, 'SIGKILL');
  } catch {
    // gone meanwhile
  }
}

function parseCommit(line: string): Commit {
  const j = JSON.parse(line) as { time: string; ts: number; lines?: number; chunks: number; stagesMs?: Record<string, number> };
  return { ts: j.ts, at: Date.parse(j.time), lines: j.lines ?? null, chunks: j.chunks, stagesMs: j.stagesMs ?? {} };
}

function warningText(line: string): string {
  try {
    const j = JSON.parse(line) as { msg?: string; err?: string };
    return `${j.msg ?? '?'}${j.err ? `: ${j.err}` : ''}`;
  } catch {
    return line.slice(0, 200);
  }
}

/** Polls /proc/net/udp until something listens on the port (both servers bind last). */
function waitUdpBound(port: number, proc: ChildProcess, output: () => string): Promise<void> {
  return waitUntil(() => udpSocketLine(port) !== null, proc, output, `listening on udp ${port}`);
}

async function waitUntil(ready: () => boolean, proc: ChildProcess, output: () => string, what: string, timeoutMs = 15_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (ready()) return;
    if (proc.exitCode !== null || proc.signalCode !== null) throw new Error(`server exited (${proc.exitCode ?? proc.signalCode}) before ${what}:\n${output()}`);
    if (Date.now() > deadline) throw new Error(`server not ${what} after ${timeoutMs} ms:\n${output()}`);
    await sleep(10);
  }
}

/** The /proc/net/udp line of the socket bound to this port (127.0.0.1 or any address), split into fields. */
/** The /proc/net/udp lines (split into fields) of every socket bound to this local port. */
function udpSocketLines(port: number): string[][] {
  const hex = `:${port.toString(16).toUpperCase().padStart(4, '0')}`;
  const out: string[][] = [];
  for (const line of readFileSync('/proc/net/udp', 'utf8').split('\n')) {
    const f = line.trim().split(/\s+/);
    if (f[1]?.endsWith(hex)) out.push(f);
  }
  return out;
}

function udpSocketLine(port: number): string[] | null {
  return udpSocketLines(port)[0] ?? null;
}

/**
 * Datagrams the kernel dropped on the sockets bound to this port since they
 * were opened (/proc/net/udp `drops`: a full receive buffer, the same event
 * that /proc/net/snmp counts machine-wide as Udp RcvbufErrors), or null if
 * no socket is bound. A cluster's workers share one socket (node:dgram) or
 * each have their own (the native reader, SO_REUSEPORT): summed.
 */
export function udpDrops(port: number): number | null {
  const lines = udpSocketLines(port);
  return lines.length ? lines.reduce((a, f) => a + Number(f[f.length - 1]), 0) : null;
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

let clkTck = 0;
/** CPU seconds (user + system) used so far by a process. */
export function cpuSeconds(pid: number): number {
  if (!clkTck) clkTck = Number(spawnSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).stdout.trim()) || 100;
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  // Fields after the ")" that ends comm: state is field 3, utime 14, stime 15.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(fields[11]) + Number(fields[12])) / clkTck;
}

/** CPU seconds of each process, in the order given. */
export function cpuSecondsEach(procs: readonly ServerProcess[]): number[] {
  return procs.map((p) => cpuSeconds(p.pid));
}

/** Peak resident set size in bytes (VmHWM); with `now`, the current one (VmRSS). */
export function peakRssBytes(pid: number, now = false): number {
  const m = (now ? /VmRSS:\s+(\d+) kB/ : /VmHWM:\s+(\d+) kB/).exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) * 1024 : 0;
}

let redis: Redis | null = null;
export function redisClient(): Redis {
  redis ??= new Redis(REDIS_URL, { maxRetriesPerRequest: 1, lazyConnect: false });
  return redis;
}

export async function closeRedis(): Promise<void> {
  const r = redis;
  redis = null;
  if (r) await r.quit().catch(() => r.disconnect());
}

export async function info(section: string): Promise<Map<string, string>> {
  const text = await redisClient().info(section);
  return new Map(text.split('\r\n').flatMap((l) => (l.includes(':') ? [l.split(':', 2) as [string, string]] : [])));
}

/** redis-server's CPU seconds (INFO cpu: its own rusage, the same as /proc/<process_id>/stat). */
export async function redisCpuSeconds(): Promise<number> {
  const i = await info('cpu');
  return Number(i.get('used_cpu_user') ?? 0) + Number(i.get('used_cpu_sys') ?? 0);
}

export async function redisServerInfo(): Promise<{ version: string; pid: number }> {
  const i = await info('server');
  return { version: i.get('redis_version') ?? '?', pid: Number(i.get('process_id') ?? 0) };
}
