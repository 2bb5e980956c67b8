/**
 * A private redis-server for a trial (redis.embedded): when nothing answers
 * at the default redis.url ('auto') or always ('always'), tallyd starts the
 * redis-server found on PATH on a free loopback port, with its data (AOF, so
 * a restart keeps the trial's state) and its log in one folder
 * ($XDG_STATE_HOME/tallyd/trial-redis, else ~/.local/state/tallyd/trial-redis),
 * and stops it by pid when tallyd stops.
 *
 * No orphan is left when tallyd dies without stopping it (kill -9, a crash):
 * a watchdog `sh` holds a pipe from tallyd and kills the server once that
 * pipe closes; and a server a dead tallyd left running on the folder (the
 * watchdog killed too) is found by its pidfile at the next start and stopped.
 * Both run in their own session (setsid), so a terminal's Ctrl-C reaches
 * tallyd only, which still merges its last batch into this server.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { accessSync, constants, existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { redactUrl } from '../config/redact.js';
import type { RedisConfig } from '../config/types.js';
import type { Logger } from '../observability/logger.js';
import { StoreError } from './errors.js';

/** The command that installs redis-server, named by every error that lacks one. */
export const INSTALL_REDIS = 'sudo apt-get install redis-server';

const START_TIMEOUT_MS = 10_000;
const STOP_TIMEOUT_MS = 10_000;

/** The absolute path of an executable `name` on PATH, or null. */
export function findOnPath(name: string, pathEnv = process.env.PATH ?? ''): string | null {
  for (const dir of pathEnv.split(path.delimiter)) {
    if (dir === '') continue;
    const file = path.join(dir, name);
    try {
      accessSync(file, constants.X_OK);
      return file;
    } catch {
      // not here
    }
  }
  return null;
}

/** Where the trial's data lives. */
export function trialDir(env: NodeJS.ProcessEnv = process.env): string {
  const state = env.XDG_STATE_HOME !== undefined && env.XDG_STATE_HOME !== '' ? env.XDG_STATE_HOME : path.join(os.homedir(), '.local', 'state');
  return path.join(state, 'tallyd', 'trial-redis');
}

/**
 * Sends PING on a fresh connection: 'answers' when a Redis replies (+PONG, or
 * an error such as NOAUTH), 'refused' when nothing listens, 'other' for
 * anything else (no reply within timeoutMs, a reset).
 */
export function pingOnce(host: string, port: number, timeoutMs: number): Promise<'answers' | 'refused' | 'other'> {
  return new Promise((resolve) => {
    const sock = net.connect(port, host);
    let got = '';
    const done = (result: 'answers' | 'refused' | 'other'): void => {
      clearTimeout(timer);
      sock.destroy();
      resolve(result);
    };
    const timer = setTimeout(() => done('other'), timeoutMs);
    sock.on('connect', () => sock.write('PING\r\n'));
    sock.on('data', (d: Buffer) => {
      got += d.toString('latin1');
      if (got.includes('\r\n')) done(got.startsWith('+') || got.startsWith('-') ? 'answers' : 'other');
    });
    sock.on('error', (err: NodeJS.ErrnoException) => done(err.code === 'ECONNREFUSED' ? 'refused' : 'other'));
  });
}

export type RedisPlan =
  | { kind: 'configured' }
  | { kind: 'embed'; bin: string; dir: string; why: string }
  | { kind: 'fail'; message: string };

/**
 * What to do about redis.url before starting. `defaultUrl` is the url 'auto'
 * applies to (DEFAULTS.redis.url; a test passes its own).
 */
export async function planRedis(cfg: RedisConfig, defaultUrl: string, env: NodeJS.ProcessEnv = process.env): Promise<RedisPlan> {
  if (cfg.embedded === 'never' || cfg.nodes.length > 0) return { kind: 'configured' }; // a Redis Cluster is never a trial
  if (cfg.embedded === 'auto') {
    if (cfg.url !== defaultUrl) return { kind: 'configured' };
    // Only when nothing listens: a Redis that is slow or refuses us is the operator's, and its error says so.
    const u = new URL(cfg.url);
    if ((await pingOnce(u.hostname, Number(u.port || 6379), 1000)) !== 'refused') return { kind: 'configured' };
  }
  const bin = findOnPath('redis-server', env.PATH);
  const why = cfg.embedded === 'always' ? 'redis.embedded is "always"' : `nothing answers at ${redactUrl(cfg.url)}`;
  if (bin === null) {
    return {
      kind: 'fail',
      message: `redis unreachable at ${redactUrl(cfg.url)}: ${why}, and no redis-server is on PATH for a private trial one: ` +
        `install it (Debian/Ubuntu: ${INSTALL_REDIS}) and start tallyd again, or point redis.url (REDIS_URL) at a running Redis`,
    };
  }
  return { kind: 'embed', bin, dir: trialDir(env), why };
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      srv.close(() => (typeof addr === 'object' && addr !== null ? resolve(addr.port) : reject(new Error('no port'))));
    });
  });
}

/** The process exists and is not a zombie waiting for its reaper. */
function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EPERM') return false;
  }
  try {
    return !/^\d+ \(.*\) Z/.test(readFileSync(`/proc/${pid}/stat`, 'utf8'));
  } catch {
    return true; // no /proc: kill(pid, 0) said it exists
  }
}

function readPid(file: string): number | null {
  try {
    const pid = Number(readFileSync(file, 'utf8').trim());
    return Number.isInteger(pid) && pid > 0 ? pid : null;
  } catch {
    return null;
  }
}

function isRedisServer(pid: number): boolean {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes('redis-server');
  } catch {
    return false;
  }
}

async function waitGone(pid: number, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (alive(pid)) {
    if (Date.now() > deadline) return false;
    await new Promise((r) => setTimeout(r, 50));
  }
  return true;
}

export class EmbeddedRedis {
  private constructor(
    readonly dir: string,
    readonly port: number,
    private readonly proc: ChildProcess,
    private readonly watchdog: ChildProcess,
    private readonly exited: Promise<void>,
  ) {}

  get url(): string {
    return `redis://127.0.0.1:${this.port}`;
  }

  get pid(): number {
    return this.proc.pid ?? -1;
  }

  /** Starts redis-server `bin` on a free loopback port with its data in `dir`; resolves once it answers PING. */
  static async start(bin: string, dir: string, log: Logger): Promise<EmbeddedRedis> {
    mkdirSync(dir, { recursive: true });
    const owner = path.join(dir, 'tallyd.pid');
    const ownerPid = readPid(owner);
    if (ownerPid !== null && ownerPid !== process.pid && alive(ownerPid)) {
      throw new StoreError('EREDIS', `another tallyd (pid ${ownerPid}) runs the trial redis-server in ${dir}; stop it, or set redis.url`);
    }
    const pidfile = path.join(dir, 'redis.pid');
    const stale = readPid(pidfile);
    if (stale !== null && alive(stale) && isRedisServer(stale)) {
      log.warn({ redisPid: stale, dir }, 'stopping the trial redis-server a tallyd that died left running');
      process.kill(stale, 'SIGTERM');
      if (!(await waitGone(stale, STOP_TIMEOUT_MS))) throw new StoreError('EREDIS', `the old trial redis-server (pid ${stale}) in ${dir} does not stop; kill ${stale}`);
    }
    writeFileSync(owner, `${process.pid}\n`);
    const port = await freePort();
    const args = ['--port', String(port), '--bind', '127.0.0.1', '--protected-mode', 'yes', '--dir', dir,
      '--appendonly', 'yes', '--save', '', '--daemonize', 'no', '--pidfile', pidfile, '--logfile', path.join(dir, 'redis.log')];
    const proc = spawn(bin, args, { stdio: ['ignore', 'ignore', 'pipe'], detached: true });
    let stderr = '';
    proc.stderr?.on('data', (d: Buffer) => (stderr += d.toString()));
    const exited = new Promise<void>((resolve) => {
      proc.once('exit', () => resolve());
      proc.once('error', (err) => {
        stderr += err.message;
        resolve();
      });
    });
    // Kills the server when tallyd's end of the pipe closes, however tallyd ends.
    const watchdog = spawn('/bin/sh', ['-c', 'read _ ; kill "$0" 2>/dev/null', String(proc.pid ?? 0)], { stdio: ['pipe', 'ignore', 'ignore'], detached: true });
    watchdog.on('error', () => undefined);
    watchdog.stdin?.on('error', () => undefined);
    const server = new EmbeddedRedis(dir, port, proc, watchdog, exited);
    const deadline = Date.now() + START_TIMEOUT_MS;
    for (;;) {
      if (proc.exitCode !== null || proc.signalCode !== null || proc.pid === undefined) {
        await server.stop();
        const tail = existsSync(path.join(dir, 'redis.log')) ? readFileSync(path.join(dir, 'redis.log'), 'utf8').trim().split('\n').slice(-3).join(' | ') : '';
        throw new StoreError('EREDIS', `the trial redis-server (${bin}) exited at start: ${(stderr.trim() || tail) || 'no output'} (log: ${path.join(dir, 'redis.log')})`);
      }
      if ((await pingOnce('127.0.0.1', port, 300)) === 'answers') break;
      if (Date.now() > deadline) {
        await server.stop();
        throw new StoreError('EREDIS', `the trial redis-server did not answer within ${START_TIMEOUT_MS} ms (log: ${path.join(dir, 'redis.log')})`);
      }
      await new Promise((r) => setTimeout(r, 50));
    }
    proc.unref();
    watchdog.unref();
    return server;
  }

  /** SIGTERM (redis writes its AOF and exits), SIGKILL after a time limit. Idempotent. */
  async stop(): Promise<void> {
    if (this.watchdog.exitCode === null && this.watchdog.signalCode === null) this.watchdog.kill('SIGKILL');
    const running = this.proc.exitCode === null && this.proc.signalCode === null && this.proc.pid !== undefined;
    if (running) {
      this.proc.kill('SIGTERM');
      const timer = setTimeout(() => this.proc.kill('SIGKILL'), STOP_TIMEOUT_MS);
      await this.exited;
      clearTimeout(timer);
    }
    rmSync(path.join(this.dir, 'tallyd.pid'), { force: true });
  }
}
