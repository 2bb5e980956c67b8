/**
 * A redis-server of the test's own on a free port (no persistence), for
 * faults: pause (SIGSTOP), resume (SIGCONT), kill. Stopped by its pid.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { Redis } from 'ioredis';
import { freePort, sleep } from './carbon.js';

export class PrivateRedis {
  private proc: ChildProcess | null = null;
  private exited: Promise<void> = Promise.resolve();
  port = 0;

  get url(): string {
    return `redis://127.0.0.1:${this.port}`;
  }

  /** Starts on a free port, or on `port` (a restart on the same address). */
  async start(port?: number): Promise<void> {
    this.port = port ?? (await freePort());
    const proc = spawn('redis-server', ['--port', String(this.port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--daemonize', 'no'], {
      stdio: 'ignore',
    });
    this.proc = proc;
    this.exited = new Promise((r) => proc.once('exit', () => r()));
    const r = new Redis(this.url, { lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null });
    r.on('error', () => undefined);
    const deadline = Date.now() + 5000;
    try {
      for (;;) {
        try {
          await r.connect();
          await r.ping();
          return;
        } catch (err) {
          if (Date.now() > deadline) throw new Error(`redis-server on ${this.port} did not start: ${(err as Error).message}`);
          r.disconnect();
          await sleep(50);
        }
      }
    } finally {
      r.disconnect();
    }
  }

  pause(): void {
    this.proc?.kill('SIGSTOP');
  }

  resume(): void {
    this.proc?.kill('SIGCONT');
  }

  /** SIGKILL (after SIGCONT, so a paused one dies too) and wait for the exit. Idempotent. */
  async stop(): Promise<void> {
    const p = this.proc;
    this.proc = null;
    if (!p || p.exitCode !== null || p.signalCode !== null) return;
    p.kill('SIGCONT');
    p.kill('SIGKILL');
    await this.exited;
  }
}
