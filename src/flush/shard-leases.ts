/**
 * Which process leads which shard (DESIGN "Shards"): rendezvous hashing over
 * the live flush threads. Each flush thread heartbeats its token into the
 * hash `flushers` (shard 0's keys: token -> ms) every leaseTtl/3 and removes
 * it on a clean stop; an entry older than leaseTtl is not live, and one older
 * than STALE_TTLS leaseTtl is removed by whoever sees it. For each shard the
 * live tokens are ranked by a stable hash of token and shard; the first one
 * is the shard's preferred leader. A Flusher asks `prefers(shard)` at each
 * lease check (flusher.ts): it takes or renews the lease only when preferred
 * (or when the lease has been free for a full leaseTtl), and a holder that is
 * no longer preferred hands the shard over. So a new process takes its share
 * within about one check, and a dead one's shards move within leaseTtl plus a
 * check (its heartbeat and its leases expire together).
 */
import { createHash } from 'node:crypto';
import { systemClock, type Clock } from '../clock.js';
import type { Logger } from '../observability/logger.js';
import { RateLimitedLog } from '../observability/rate-limited-log.js';
import type { Store } from '../store/store.js';

/** An entry older than this many leaseTtl is removed from the hash (a process that died uncleanly). */
export const STALE_TTLS = 3;

/** The stable score of a token for a shard: the first 48 bits of SHA-1(token ":" shard). */
export function rendezvousScore(token: string, shard: number): number {
  return createHash('sha1').update(`${token}:${shard}`).digest().readUIntBE(0, 6);
}

/** The tokens ranked for a shard, best first (ties, which SHA-1 makes unlikely, by token). */
export function rankFor(tokens: readonly string[], shard: number): string[] {
  const scored = [...new Set(tokens)].map((t) => ({ t, s: rendezvousScore(t, shard) }));
  scored.sort((a, b) => b.s - a.s || (a.t < b.t ? -1 : a.t > b.t ? 1 : 0));
  return scored.map((x) => x.t);
}

/** The shards (of count) for which token ranks first among tokens. */
export function shardsOf(token: string, tokens: readonly string[], count: number): number[] {
  const all = tokens.includes(token) ? tokens : [...tokens, token];
  const out: number[] = [];
  for (let s = 0; s < count; s++) if (rankFor(all, s)[0] === token) out.push(s);
  return out;
}

/** Live tokens from the hash's entries (token -> heartbeat ms) at nowMs, and the stale ones to remove. */
export function liveTokens(entries: Record<string, string>, nowMs: number, leaseTtlMs: number): { live: string[]; stale: string[] } {
  const live: string[] = [];
  const stale: string[] = [];
  for (const [token, v] of Object.entries(entries)) {
    const at = Number(v);
    const age = nowMs - (Number.isFinite(at) ? at : 0);
    if (age <= leaseTtlMs) live.push(token);
    else if (age > STALE_TTLS * leaseTtlMs) stale.push(token);
  }
  return { live, stale };
}

/** What a Flusher asks before taking or keeping its shard's lease. */
export interface LeaseGate {
  /** Whether this process ranks first for shard among the live flush threads. */
  prefers(shard: number): boolean;
}

/** The flush thread's membership in `flushers`, and the ranking it answers from (refreshed at each heartbeat). */
export class ShardLeases implements LeaseGate {
  private timer: NodeJS.Timeout | null = null;
  private live: string[];
  /** The flushers hash as last read (token -> heartbeat ms), null before the first read. */
  private entries: Record<string, string> | null = null;
  private stopped = false;
  private readonly errLog: RateLimitedLog;

  constructor(
    /** Shard 0's store: `flushers` lives in its keys. */
    private readonly store: Pick<Store, 'redis' | 'keys'>,
    readonly token: string,
    private readonly leaseTtlMs: number,
    log: Logger,
    private readonly clock: Clock = systemClock,
  ) {
    this.live = [token];
    this.errLog = new RateLimitedLog(log, 5000);
  }

  /** Heartbeats once (and reads the others), then every leaseTtl/3. */
  async start(): Promise<void> {
    await this.beat();
  }

  /**
   * Judged at the time of asking from the heartbeat times last read, not from the live list of the last heartbeat:
   * a process that died is out of the ranking as soon as its entry is leaseTtl old (its lease expires then too), not
   * a heartbeat later.
   */
  prefers(shard: number): boolean {
    return rankFor(this.liveNow(), shard)[0] === this.token;
  }

  private liveNow(): string[] {
    if (this.entries === null) return this.live;
    const { live } = liveTokens(this.entries, this.clock.now(), this.leaseTtlMs);
    return live.includes(this.token) ? live : [...live, this.token];
  }

  /** The shards this process is preferred for now (reports, logs). */
  preferred(count: number): number[] {
    return shardsOf(this.token, this.liveNow(), count);
  }

  /** The live tokens as last read (this one always among them). */
  liveTokens(): readonly string[] {
    return this.live;
  }

  /** Stops heartbeating and leaves the hash: the others rank without this process at their next heartbeat. */
  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) this.clock.clearTimeout(this.timer);
    this.timer = null;
    await this.store.redis.hdel(this.store.keys.flushers, this.token).catch(() => undefined);
  }

  private async beat(): Promise<void> {
    try {
      const key = this.store.keys.flushers;
      const now = this.clock.now();
      await this.store.redis.hset(key, this.token, String(now));
      const entries = await this.store.redis.hgetall(key);
      const { live, stale } = liveTokens(entries, this.clock.now(), this.leaseTtlMs);
      for (const t of stale) delete entries[t];
      this.entries = entries;
      if (stale.length > 0) await this.store.redis.hdel(key, ...stale);
      // This process counts as live whatever its entry says: after a Redis outage every entry is old.
      this.live = live.includes(this.token) ? live : [...live, this.token];
    } catch (err) {
      this.errLog.warn(() => ({ msg: 'flushers heartbeat failed; ranking shards with the last list read', fields: { err: (err as Error).message } }));
    }
    if (!this.stopped) this.timer = this.clock.setTimeout(() => void this.beat(), Math.max(100, Math.floor(this.leaseTtlMs / 3)));
  }
}
