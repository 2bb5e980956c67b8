/**
 * Drains the Redis outbox to Carbon's plaintext port over one persistent TCP
 * connection: LRANGE a few chunks, write them, and LTRIM (fenced by the lease)
 * once the kernel took them. Connection failures back off exponentially
 * (100 ms .. 5 s) and nothing leaves the outbox until it was written, so a
 * Carbon outage delays lines but loses none. Only the leader drains, so
 * chunks keep their order and go out once (at least once across a failover).
 */
import net from 'node:net';
import type { Logger } from '../../observability/logger.js';
import { RateLimitedLog } from '../../observability/rate-limited-log.js';
import type { SelfStats } from '../../observability/self-stats.js';
import type { Store } from '../../store/store.js';

export interface CarbonTarget {
  readonly host: string;
  readonly port: number;
}

const CHUNKS_PER_WRITE = 16;
const IDLE_POLL_MS = 1000;
const BACKOFF_MIN_MS = 100;
const BACKOFF_MAX_MS = 5000;

export class CarbonSink {
  private socket: net.Socket | null = null;
  private running = false;
  private loop: Promise<void> | null = null;
  private wake: (() => void) | null = null;
  private backoff = BACKOFF_MIN_MS;
  private readonly errLog: RateLimitedLog;

  constructor(
    private readonly target: CarbonTarget,
    private readonly store: Store,
    /** The current lease token when this process leads, else null. */
    private readonly leaderToken: () => string | null,
    private readonly self: SelfStats,
    private readonly log: Logger,
  ) {
    this.errLog = new RateLimitedLog(log, 10_000);
  }

  start(): void {
    this.running = true;
    this.loop = this.run();
  }

  /** New chunks were committed: drain now rather than at the next poll. */
  kick(): void {
    this.wake?.();
  }

  /** Stop after trying to drain what is left for up to timeoutMs. */
  async stop(timeoutMs: number): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (Date.now() < deadline && this.leaderToken() && this.socket && (await this.store.outboxLength().catch(() => 0)) > 0) {
      await sleep(50);
    }
    this.running = false;
    this.kick();
    await this.loop;
    this.socket?.destroy();
    this.socket = null;
  }

  private async run(): Promise<void> {
    while (this.running) {
      const token = this.leaderToken();
      if (!token) {
        await this.idle(IDLE_POLL_MS);
        continue;
      }
      let chunks: string[];
      try {
        chunks = await this.store.outboxHead(CHUNKS_PER_WRITE);
      } catch (err) {
        this.errLog.warn(() => ({ msg: 'reading the outbox failed', fields: { err: (err as Error).message } }));
        await this.idle(IDLE_POLL_MS);
        continue;
      }
      if (chunks.length === 0) {
        await this.idle(IDLE_POLL_MS);
        continue;
      }
      try {
        const sock = await this.connected();
        const payload = chunks.join('');
        const t0 = Date.now();
        await write(sock, payload);
        const g = this.self.graphite;
        g.flush_time = Date.now() - t0;
        g.flush_length = Buffer.byteLength(payload);
        g.last_flush = Math.round(Date.now() / 1000);
        this.self.linesSent += countLines(payload);
        this.backoff = BACKOFF_MIN_MS;
        if (!(await this.store.ack(token, chunks.length))) {
          this.log.warn('outbox ack refused: the lease moved to another process');
        }
      } catch (err) {
        this.self.carbonErrors++;
        this.self.graphite.last_exception = Math.round(Date.now() / 1000);
        this.socket?.destroy();
        this.socket = null;
        this.errLog.warn(() => ({
          msg: `carbon ${this.target.host}:${this.target.port} unreachable; lines wait in the redis outbox`,
          fields: { err: (err as Error).message, retryInMs: this.backoff },
        }));
        await this.idle(this.backoff);
        this.backoff = Math.min(this.backoff * 2, BACKOFF_MAX_MS);
      }
    }
  }

  private connected(): Promise<net.Socket> {
    const existing = this.socket;
    if (existing && !existing.destroyed && existing.writable) return Promise.resolve(existing);
    return new Promise((resolve, reject) => {
      const sock = net.createConnection({ host: this.target.host, port: this.target.port });
      sock.setNoDelay(true);
      sock.setKeepAlive(true, 10_000);
      const onError = (err: Error) => {
        sock.destroy();
        reject(err);
      };
      sock.once('error', onError);
      sock.once('connect', () => {
        sock.off('error', onError);
        // Later errors surface through the next write; keep them from being unhandled.
        sock.on('error', () => undefined);
        sock.on('close', () => {
          if (this.socket === sock) this.socket = null;
        });
        // Carbon never talks back; read and discard so the socket stays healthy.
        sock.resume();
        if (this.socket === null) this.log.info({ host: this.target.host, port: this.target.port }, 'connected to carbon');
        this.socket = sock;
        resolve(sock);
      });
    });
  }

  private idle(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const done = (): void => {
        clearTimeout(t);
        if (this.wake === done) this.wake = null;
        resolve();
      };
      const t = setTimeout(done, ms);
      this.wake = done;
    });
  }
}

function write(sock: net.Socket, payload: string): Promise<void> {
  return new Promise((resolve, reject) => {
    sock.write(payload, (err) => (err ? reject(err) : resolve()));
  });
}

function countLines(s: string): number {
  let n = 0;
  for (let i = s.indexOf('\n'); i !== -1; i = s.indexOf('\n', i + 1)) n++;
  return n;
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}
