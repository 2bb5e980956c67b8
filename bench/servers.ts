/**
 * The two servers under test as child processes, each on free loopback
 * ports and sending to the trial's Carbon: tallyd (`node dist/main.js`,
 * a fresh Redis key prefix, removed afterwards) and Etsy statsd 0.9 (the
 * devDependency). Plus what the bench reads about processes from /proc:
 * CPU seconds (utime + stime) and peak RSS (VmHWM), and Redis's own CPU.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Redis } from 'ioredis';
import { freePort, freeUdpPort } from '../test/helpers/carbon.js';
import { cleanup } from '../test/helpers/redis.js';

export const ROOT = path.resolve(import.meta.dirname, '..');
export const REDIS_URL = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';
export const SERVERS = ['tallyd', 'statsd'] as const;
export type ServerName = (typeof SERVERS)[number];

export const FLUSH_INTERVAL = 2000;
const TALLYD_BATCH_INTERVAL = 200;
/** ms after tallyd received a sample before a flush surely holds it: two batch merges and a margin. */
export const TALLYD_SETTLE_MS = TALLYD_BATCH_INTERVAL * 2 + 300;
/** statsd is spawned only in the first this-many ms of a second (see flushPhaseMs). */
const STATSD_SPAWN_WINDOW_MS = 150;

export interface RunningServer {
  readonly name: ServerName;
  readonly pid: number;
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
  output(): string;
  alive(): boolean;
  /** Stop (tallyd: SIGTERM, a clean stop; statsd: SIGKILL) and clean up. */
  stop(): Promise<void>;
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
}

/** A `period committed` log line of tallyd's flusher (debug level). */
export interface Commit {
  /** The period's boundary, unix seconds (its lines' timestamp). */
  ts: number;
  /** Date.now() when the commit was logged: rotate, read, compute and commit are done. */
  at: number;
  lines: number;
  chunks: number;
}

export async function startServer(name: ServerName, carbonPort: number, o: ServerOptions = {}): Promise<RunningServer> {
  const udpPort = await freeUdpPort();
  const mgmtPort = await freePort();
  const zmqPort = o.zmq ? await freePort() : 0;
  const zmqEndpoint = o.zmq ? `tcp://127.0.0.1:${zmqPort}` : null;
  if (o.zmq && name !== 'tallyd') throw new Error(`${name} has no ZeroMQ input`);
  const dir = mkdtempSync(path.join(tmpdir(), `tallyd-bench-${name}-`));
  const common = {
    mgmt_address: '127.0.0.1',
    mgmt_port: mgmtPort,
    graphiteHost: '127.0.0.1',
    graphitePort: carbonPort,
    flushInterval: o.flushInterval ?? FLUSH_INTERVAL,
  };
  let file: string;
  let args: string[];
  let keyPrefix: string | null = null;
  if (name === 'tallyd') {
    keyPrefix = `tallyd-bench:${randomBytes(4).toString('hex')}:`;
    file = path.join(dir, 'config.json');
    const cfg = {
      ...common,
      // tallyd binds its servers in order: the udp one, which the bench waits for, last.
      servers: [
        ...(o.zmq ? [{ server: 'zmq', bind: zmqEndpoint, type: o.zmq, mode: 'aggregate', prefix: '' }] : []),
        { server: 'udp', address: '127.0.0.1', port: udpPort, ...(o.tallydRecvBuffer ? { recvBufferSize: o.tallydRecvBuffer } : {}) },
      ],
      batchInterval: TALLYD_BATCH_INTERVAL,
      redis: { url: REDIS_URL, keyPrefix },
      log: { level: o.logLevel ?? 'warn' },
    };
    writeFileSync(file, JSON.stringify(cfg, null, 2));
    args = [path.join(ROOT, 'dist', 'main.js'), file];
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
  let partial = '';
  const keep = (d: Buffer) => {
    const text = d.toString();
    out = (out + text).slice(-20_000);
    if (o.logLevel !== 'debug') return;
    const lines = (partial + text).split('\n');
    partial = lines.pop() ?? '';
    for (const l of lines) {
      if (l.includes('"period committed"')) commits.push(parseCommit(l));
      else if (/"level":"(warn|error|fatal)"/.test(l) && warnings.length < 100) warnings.push(warningText(l));
    }
  };
  proc.stdout?.on('data', keep);
  proc.stderr?.on('data', keep);
  const exited = new Promise<void>((resolve) => proc.once('exit', () => resolve()));
  const alive = () => proc.exitCode === null && proc.signalCode === null;
  let stopping: Promise<void> | null = null;
  const stop = (): Promise<void> => {
    stopping ??= (async () => {
      if (alive()) {
        proc.kill(name === 'tallyd' ? 'SIGTERM' : 'SIGKILL');
        const timer = setTimeout(() => proc.kill('SIGKILL'), 8000);
        await exited;
        clearTimeout(timer);
      }
      rmSync(dir, { recursive: true, force: true });
      if (keyPrefix) await cleanup(keyPrefix, REDIS_URL);
    })();
    return stopping;
  };
  try {
    await waitUdpBound(udpPort, proc, () => out);
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
    udpPort,
    settleMs: name === 'tallyd' ? TALLYD_SETTLE_MS : 300,
    lateFlushes: name === 'tallyd',
    flushPhaseMs: name === 'tallyd' ? 0 : statsdPhase,
    keyPrefix,
    zmqEndpoint,
    commits,
    warnings,
    output: () => out,
    alive,
    stop,
  };
}

function parseCommit(line: string): Commit {
  const j = JSON.parse(line) as { time: string; ts: number; lines: number; chunks: number };
  return { ts: j.ts, at: Date.parse(j.time), lines: j.lines, chunks: j.chunks };
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
async function waitUdpBound(port: number, proc: ChildProcess, output: () => string, timeoutMs = 15_000): Promise<void> {
  const hex = `:${port.toString(16).toUpperCase().padStart(4, '0')} `;
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (readFileSync('/proc/net/udp', 'utf8').includes(hex)) return;
    if (proc.exitCode !== null || proc.signalCode !== null) throw new Error(`server exited (${proc.exitCode ?? proc.signalCode}) before listening:\n${output()}`);
    if (Date.now() > deadline) throw new Error(`server not listening on udp ${port} after ${timeoutMs} ms:\n${output()}`);
    await sleep(10);
  }
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
