/**
 * Drains the Redis outbox to Carbon, at least once (DESIGN invariant 8): a
 * line leaves the outbox only when no dying connection can take it along.
 *
 * Each round claims the entries after this sink's cursor (claimOutbox-4, up
 * to READ_BYTES), delivers them over a connection of their own that tallyd
 * half-closes (deliver.ts), and acknowledges them by the id of the last one
 * (ackOutbox-5) only once Carbon closed its side after reading to our EOF.
 * Any error, reset, unclean close or carbonWriteTimeout without progress
 * destroys the connection, counts carbon_errors, logs (rate-limited) what
 * will be written again, backs off (100 ms .. 5 s) and writes the same
 * entries again; Graphite keeps one value per timestamp, so a re-sent line
 * is harmless. Only the leader drains (claims and acks are fenced by the
 * lease), so entries go out in order.
 */
import type { Clock } from '../../clock.js';
import { systemClock } from '../../clock.js';
import type { Logger } from '../../observability/logger.js';
import { RateLimitedLog } from '../../observability/rate-limited-log.js';
import type { SelfStats } from '../../observability/self-stats.js';
import { OUTBOX_READER } from '../../store/keys.js';
import type { OutboxEntry, Store } from '../../store/store.js';
import { deliver, type CarbonTarget, type Delivery } from './deliver.js';
import type { Endpoints, ReadProof } from './peer-read-all.js';
import { pickleFrames } from './pickle.js';

export type { CarbonTarget } from './deliver.js';

/** The narrow view of the store a sink needs. */
export type OutboxStore = Pick<Store, 'claimOutbox' | 'ackOutbox' | 'outboxStats'>;

export interface CarbonOptions {
  readonly protocol: 'text' | 'pickle';
  /** carbonWriteTimeout, ms. */
  readonly writeTimeoutMs: number;
  readonly clock?: Clock;
  /** Bytes of outbox entries per delivery (at least one entry). */
  readonly readBytes?: number;
  /** Tests: replaces the /proc check of deliver.ts. */
  readonly proof?: (ends: Endpoints) => ReadProof;
}

const READ_BYTES = 4 * 1024 * 1024;
const READ_ENTRIES = 1000;
const IDLE_POLL_MS = 1000;
const BACKOFF_MIN_MS = 100;
const BACKOFF_MAX_MS = 5000;

export class CarbonSink {
  private running = false;
  private loop: Promise<void> | null = null;
  private wake: (() => void) | null = null;
  /** Every pending idle(), so stop() never waits out a backoff. */
  private readonly sleepers = new Set<() => void>();
  private current: Delivery | null = null;
  /** From a claim to its ack: entries are on their way (a handover waits for this to end, flush/flusher.ts). */
  private inFlight = false;
  private backoff = BACKOFF_MIN_MS;
  private readonly errLog: RateLimitedLog;
  private readonly clock: Clock;

  constructor(
    private readonly target: CarbonTarget,
    private readonly store: OutboxStore,
    /** The current lease token when this process leads, else null. */
    private readonly leaderToken: () => string | null,
    private readonly self: SelfStats,
    private readonly log: Logger,
    private readonly opts: CarbonOptions,
  ) {
    this.clock = opts.clock ?? systemClock;
    this.errLog = new RateLimitedLog(log, 10_000, () => this.clock.now());
  }

  start(): void {
    this.running = true;
    this.loop = this.run();
  }

  /** Whether claimed entries are being written or acknowledged now. */
  get busy(): boolean {
    return this.inFlight;
  }

  /** New entries were committed: deliver now rather than at the next poll. */
  kick(): void {
    this.wake?.();
  }

  /** Drains while this process leads and Carbon takes the lines, for up to timeoutMs; then stops. */
  async stop(timeoutMs: number): Promise<void> {
    const deadline = this.clock.now() + timeoutMs;
    while (this.clock.now() < deadline && this.leaderToken() !== null) {
      const left = await this.store.outboxStats().then((s) => s.entries, () => 0);
      if (left === 0) break;
      this.kick();
      await this.idle(Math.min(50, Math.max(1, deadline - this.clock.now())), false);
    }
    this.running = false;
    this.current?.abort();
    for (const wake of [...this.sleepers]) wake();
    await this.loop;
  }

  private async run(): Promise<void> {
    while (this.running) {
      const token = this.leaderToken();
      if (!token) {
        await this.idle(IDLE_POLL_MS);
        continue;
      }
      let entries: OutboxEntry[] | null;
      this.inFlight = true;
      try {
        entries = await this.store.claimOutbox(token, OUTBOX_READER, this.opts.readBytes ?? READ_BYTES, READ_ENTRIES);
      } catch (err) {
        this.inFlight = false;
        this.errLog.warn(() => ({ msg: 'reading the outbox failed', fields: { err: (err as Error).message } }));
        await this.idle(IDLE_POLL_MS);
        continue;
      }
      if (entries === null || entries.length === 0) {
        this.inFlight = false;
        await this.idle(IDLE_POLL_MS);
        continue;
      }
      try {
        if (await this.send(entries)) await this.ack(token, entries);
      } finally {
        this.inFlight = false;
      }
    }
  }

  /** One delivery of the claimed entries; false (counted, logged, backed off) when Carbon may not have read them all. */
  private async send(entries: readonly OutboxEntry[]): Promise<boolean> {
    const lines = entries.reduce((n, e) => n + e.lines, 0);
    const payload = this.encode(entries);
    const t0 = this.clock.now();
    try {
      this.current = deliver(this.target, payload, this.opts.writeTimeoutMs, this.clock, this.opts.proof);
      await this.current.done;
    } catch (err) {
      if (!this.running) return false;
      // Nothing of this delivery will be acknowledged: the shard may be handed over during the backoff.
      this.inFlight = false;
      this.self.carbonErrors++;
      this.self.graphite.last_exception = Math.round(this.clock.now() / 1000);
      const retryInMs = this.backoff;
      this.errLog.warn(() => ({
        msg: `carbon ${this.target.host}:${this.target.port} (${this.opts.protocol}) delivery lost; its lines stay in the outbox and are written again`,
        fields: { err: (err as Error).message, entries: entries.length, lines, carbonErrors: this.self.carbonErrors, retryInMs },
      }));
      await this.idle(retryInMs, false);
      this.backoff = Math.min(this.backoff * 2, BACKOFF_MAX_MS);
      return false;
    } finally {
      this.current = null;
    }
    const g = this.self.graphite;
    g.flush_time = this.clock.now() - t0;
    g.flush_length = payload.reduce((n, b) => n + b.length, 0);
    g.last_flush = Math.round(this.clock.now() / 1000);
    this.self.linesSent += lines;
    this.backoff = BACKOFF_MIN_MS;
    return true;
  }

  private async ack(token: string, entries: readonly OutboxEntry[]): Promise<void> {
    const last = entries[entries.length - 1] as OutboxEntry;
    try {
      const r = await this.store.ackOutbox(token, OUTBOX_READER, last.id);
      if (r === -1) this.log.warn({ id: last.id }, 'outbox ack refused: the lease moved to another process, which writes these lines again');
    } catch (err) {
      // Delivered but not acknowledged: the next round writes them again (harmless).
      this.errLog.warn(() => ({ msg: 'acknowledging the outbox failed; its lines will be written again', fields: { err: (err as Error).message } }));
      await this.idle(IDLE_POLL_MS);
    }
  }

  private encode(entries: readonly OutboxEntry[]): Buffer[] {
    if (this.opts.protocol === 'pickle') {
      const { frames, skipped } = pickleFrames(entries.map((e) => e.data));
      if (skipped > 0) this.log.warn({ skipped }, 'outbox lines that are not "name value timestamp" were left out of the pickle');
      return frames;
    }
    return entries.map((e) => Buffer.from(e.data, 'utf8'));
  }

  /** Waits ms, or until kick() when wakeable. */
  private idle(ms: number, wakeable = true): Promise<void> {
    return new Promise((resolve) => {
      const done = (): void => {
        this.clock.clearTimeout(t);
        if (this.wake === done) this.wake = null;
        this.sleepers.delete(done);
        resolve();
      };
      const t = this.clock.setTimeout(done, ms);
      this.sleepers.add(done);
      if (wakeable) this.wake = done;
    });
  }
}
