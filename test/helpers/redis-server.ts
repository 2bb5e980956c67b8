/**
 * A redis-server of the test's own (Debian's /usr/bin/redis-server) on a free
 * loopback port, for faults the shared Redis must not suffer: SIGSTOP/SIGCONT,
 * kill -9 and a restart on the same data (same port, same dir, same AOF).
 * Always stop() it in an after hook, by pid; stop() is safe after a failure.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { freePort } from './carbon.js';

export const REDIS_SERVER_BIN = process.env.REDIS_SERVER_BIN ?? '/usr/bin/redis-server';

export interface RedisServerOptions {
  /** appendonly yes + appendfsync always: a kill -9 loses no acknowledged write. */
  aof?: boolean;
  /** How long start()/restart() wait for PING to answer (ms). */
  startTimeoutMs?: number;
  /** A redis.conf given before the options above (which override it), e.g. deploy/redis.conf. */
  configFile?: string;
  /** The port to listen on (default: a free one). */
  port?: number;
  /** More redis-server options, after the others (e.g. a cluster node's). */
  args?: readonly string[];
}

/** Sends PING on a fresh connection; true when the server answers within timeoutMs (+PONG, or -NOAUTH from one with requirepass). */
export function pingOnce(port: number, timeoutMs = 300): Promise<boolean> {
  return new Promise((resolve) => {
    const sock = net.connect(port, '127.0.0.1');
    let got = '';
    const done = (ok: boolean) => {
      clearTimeout(timer);
      sock.destroy();
      resolve(ok);
    };
    const timer = setTimeout(() => done(false), timeoutMs);
    sock.on('connect', () => sock.write('PING\r\n'));
    sock.on('data', (d: Buffer) => {
      got += d.toString('latin1');
      if (got.includes('\r\n')) done(got.startsWith('+PONG') || got.startsWith('-NOAUTH'));
    });
    sock.on('error', () => done(false));
  });
}

export class RedisServer {
  readonly port: number;
  readonly dir: string;
  readonly aof: boolean;
  private readonly configFile: string | undefined;
  private readonly extraArgs: readonly string[];
  private proc: ChildProcess | null = null;
  private exited: Promise<void> = Promise.resolve();
  private log = '';
  private readonly startTimeoutMs: number;

  private constructor(port: number, dir: string, opts: RedisServerOptions) {
    this.port = port;
    this.dir = dir;
    this.aof = opts.aof ?? false;
    this.configFile = opts.configFile;
    this.extraArgs = opts.args ?? [];
    this.startTimeoutMs = opts.startTimeoutMs ?? 10_000;
  }

  /** A server on a free port (or opts.port) in a fresh temp dir, not started yet: restart() starts it. */
  static async create(opts: RedisServerOptions = {}): Promise<RedisServer> {
    const port = opts.port ?? (await freePort());
    return new RedisServer(port, mkdtempSync(path.join(tmpdir(), 'tallyd-redis-')), opts);
  }

  /** Starts a server on a free port in a fresh temp dir and waits until it answers PING. */
  static async start(opts: RedisServerOptions = {}): Promise<RedisServer> {
    const server = await RedisServer.create(opts);
    try {
      await server.launch();
    } catch (err) {
      await server.stop();
      throw err;
    }
    return server;
  }

  get url(): string {
    return `redis://127.0.0.1:${this.port}`;
  }

  get pid(): number | undefined {
    return this.proc?.pid;
  }

  /** Everything the server printed (for assertion messages). */
  output(): string {
    return this.log;
  }

  private args(): string[] {
    const a = this.configFile === undefined ? [] : [this.configFile];
    a.push('--port', String(this.port), '--bind', '127.0.0.1', '--save', '', '--dir', this.dir, '--protected-mode', 'no');
    if (this.aof) a.push('--appendonly', 'yes', '--appendfsync', 'always');
    a.push(...this.extraArgs);
    return a;
  }

  private async launch(): Promise<void> {
    const proc = spawn(REDIS_SERVER_BIN, this.args(), { stdio: ['ignore', 'pipe', 'pipe'] });
    this.proc = proc;
    proc.stdout?.on('data', (d: Buffer) => (this.log += d.toString()));
    proc.stderr?.on('data', (d: Buffer) => (this.log += d.toString()));
    this.exited = new Promise<void>((resolve) => {
      proc.once('exit', () => resolve());
      proc.once('error', (err) => {
        this.log += `spawn error: ${err.message}\n`;
        resolve();
      });
    });
    const deadline = Date.now() + this.startTimeoutMs;
    for (;;) {
      if (proc.exitCode !== null || proc.signalCode !== null) throw new Error(`redis-server on ${this.port} exited:\n${this.log}`);
      if (await pingOnce(this.port)) return;
      if (Date.now() > deadline) throw new Error(`redis-server on ${this.port} did not answer PING within ${this.startTimeoutMs} ms:\n${this.log}`);
      await new Promise((r) => setTimeout(r, 25));
    }
  }

  get running(): boolean {
    return this.proc !== null && this.proc.exitCode === null && this.proc.signalCode === null;
  }

  private signal(sig: NodeJS.Signals): void {
    const pid = this.proc?.pid;
    if (pid === undefined || this.proc?.exitCode !== null || this.proc.signalCode !== null) throw new Error(`redis-server on ${this.port} is not running`);
    process.kill(pid, sig);
  }

  /** SIGSTOP: the server keeps its connections but answers nothing. */
  pause(): void {
    this.signal('SIGSTOP');
  }

  /** SIGCONT after pause(). */
  resume(): void {
    this.signal('SIGCONT');
  }

  /** kill -9, and wait until the process is gone. */
  async kill9(): Promise<void> {
    this.signal('SIGKILL');
    await this.exited;
  }

  /** Starts the server again on the same port and dir (with AOF, the data comes back); waits for PING. */
  async restart(): Promise<void> {
    if (this.proc && this.proc.exitCode === null && this.proc.signalCode === null) throw new Error('restart() while the server still runs');
    await this.launch();
  }

  /** Kills the server by pid (SIGCONT first, in case it is paused) and removes its dir. Idempotent. */
  async stop(): Promise<void> {
    const proc = this.proc;
    if (proc?.pid !== undefined && proc.exitCode === null && proc.signalCode === null) {
      try {
        process.kill(proc.pid, 'SIGKILL');
      } catch {
        // already gone
      }
      await this.exited;
    }
    this.proc = null;
    rmSync(this.dir, { recursive: true, force: true });
  }
}
