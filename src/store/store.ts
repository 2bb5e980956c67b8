/**
 * The only module that talks to Redis. Every write that must be atomic goes
 * through a Lua script (./scripts, headers list KEYS/ARGV/returns); reads are
 * pipelined. Methods map one-to-one onto the steps of DESIGN.md's data flow.
 */
import { Redis } from 'ioredis';
import type { RedisConfig } from '../config/types.js';
import type { Logger } from '../observability/logger.js';
import { StoreError } from './errors.js';
import { FIELD_SEP, Keys, KNOWN_TYPES, OUTBOX_READER, PERIOD_PARTS, type KnownType } from './keys.js';
import { loadScripts, type ScriptArg, type ScriptFn, type ScriptName } from './scripts.js';

/** A rotated period as stored: the flusher turns it into PeriodData. */
export interface RawPeriod {
  counters: Map<string, string>;
  /** field `name\nbatch` -> packed samples */
  timers: Map<string, Buffer>;
  timerCounts: Map<string, string>;
  /** fields `name\nmember` */
  sets: string[];
  gauges: Map<string, string>;
  gaugesTouched: Map<string, string>;
}

export interface CommitPayload {
  /** Outbox chunks of the period ('\n'-terminated lines), one stream entry each. */
  chunks: string[];
  gaugeTtl: Array<[string, number]>;
  gaugeDeletes: string[];
  /** outboxMaxBytes: the commit trims the oldest unclaimed entries beyond it. */
  outboxMaxBytes: number;
}

export interface CommitResult {
  /** -1 not the leader, 0 already committed, 1 committed. */
  status: number;
  /** Lines and bytes the outbox bound dropped in this commit (exact). */
  droppedLines: number;
  droppedBytes: number;
}

/** One outbox entry as a sink reads it. */
export interface OutboxEntry {
  readonly id: string;
  /** '\n'-terminated lines. */
  readonly data: string;
  readonly lines: number;
  readonly bytes: number;
}

export interface OutboxStats {
  entries: number;
  bytes: number;
  /** ms time of the oldest entry's id (when it was added), null when empty. */
  oldestMs: number | null;
}

const DEDUPE_WINDOW_MS = 15 * 60_000;
/** Fields asked per HSCAN round trip when reading a rotated period or known names. */
const SCAN_COUNT = 5000;
/** Names per HSET when remembering known names: a million new names never become one long command. */
const KNOWN_SLICE = 5000;

export class Store {
  private constructor(
    readonly redis: Redis,
    readonly keys: Keys,
    private readonly scripts: Record<ScriptName, ScriptFn>,
  ) {}

  /** Connects and loads the scripts; one clear error when Redis can't be reached. */
  static async open(cfg: RedisConfig, log: Logger, connectTimeoutMs = 5000): Promise<Store> {
    const redis = new Redis(cfg.url, {
      lazyConnect: true,
      maxRetriesPerRequest: 2,
      enableAutoPipelining: false,
      retryStrategy: (times) => Math.min(times * 200, 2000),
      connectionName: `tallyd:${process.pid}`,
    });
    let lastError: Error | undefined;
    redis.on('error', (err: Error) => {
      lastError = err;
    });
    try {
      await withTimeout(redis.connect(), connectTimeoutMs);
    } catch (err) {
      redis.disconnect();
      const why = (lastError ?? (err as Error)).message;
      throw new StoreError('EREDIS_UNREACHABLE', `redis unreachable at ${redactUrl(cfg.url)}: ${why}`, { cause: err });
    }
    let warned = false;
    redis.on('error', (err: Error) => {
      if (!warned) log.warn({ err: err.message }, 'redis connection error; retrying');
      warned = true;
    });
    redis.on('ready', () => {
      if (warned) log.info('redis connection restored');
      warned = false;
    });
    try {
      return new Store(redis, new Keys(cfg.keyPrefix), await loadScripts(redis));
    } catch (err) {
      redis.disconnect();
      throw err;
    }
  }

  private run(name: ScriptName, keys: string[], args: ScriptArg[]): Promise<unknown> {
    return this.scripts[name]((keys as ScriptArg[]).concat(args));
  }

  /** merge-9: true when merged, false when this batch id was already merged. */
  async merge(batchId: string, args: ScriptArg[]): Promise<boolean> {
    const k = this.keys;
    const res = await this.run(
      'merge',
      [k.merged, k.cur('counters'), k.cur('timers'), k.cur('timer_counts'), k.cur('sets'), k.gauges, k.cur('gauges_touched'), k.outbox, k.outboxBytes],
      ([batchId, Date.now(), DEDUPE_WINDOW_MS] as ScriptArg[]).concat(args),
    );
    return res === 1;
  }

  async tryAcquireLease(token: string, ttlMs: number): Promise<boolean> {
    const res = await this.redis.set(this.keys.lease, token, 'PX', ttlMs, 'NX');
    if (res === 'OK') return true;
    return (await this.run('renew', [this.keys.lease], [token, ttlMs])) === 1;
  }

  /** The token holding the lease, or null. */
  leaseHolder(): Promise<string | null> {
    return this.redis.get(this.keys.lease);
  }

  async releaseLease(token: string): Promise<void> {
    await this.run('release', [this.keys.lease], [token]);
  }

  /** rotate-15: -1 not the leader, 0 already rotated, 1 rotated. */
  async rotate(token: string, ts: number): Promise<number> {
    const k = this.keys;
    const keys = [k.lease, k.pending, k.lastRotated, k.gauges];
    for (const p of PERIOD_PARTS) keys.push(k.cur(p));
    for (const p of PERIOD_PARTS) keys.push(k.pendingPart(ts, p));
    keys.push(k.pendingPart(ts, 'gauges'));
    return Number(await this.run('rotate', keys, [token, ts]));
  }

  async pendingPeriods(): Promise<number[]> {
    return (await this.redis.zrange(this.keys.pending, 0, -1)).map(Number);
  }

  /**
   * Reads a rotated period with HSCAN, a few thousand fields per round trip,
   * so a period with a million names never arrives as one reply that blocks
   * the event loop (and ingest) while it is parsed. The rotated hashes no
   * longer change, so the scan sees all of them; a field HSCAN returns twice
   * lands on the same key.
   */
  async readPeriod(ts: number): Promise<RawPeriod> {
    const k = this.keys;
    const [counters, timers, timerCounts, sets, gauges, gaugesTouched] = await Promise.all([
      this.scanHash(k.pendingPart(ts, 'counters')),
      this.scanHashBuffers(k.pendingPart(ts, 'timers')),
      this.scanHash(k.pendingPart(ts, 'timer_counts')),
      this.scanFields(k.pendingPart(ts, 'sets')),
      this.scanHash(k.pendingPart(ts, 'gauges')),
      this.scanHash(k.pendingPart(ts, 'gauges_touched')),
    ]);
    return { counters, timers, timerCounts, sets, gauges, gaugesTouched };
  }

  private async scanHash(key: string): Promise<Map<string, string>> {
    const out = new Map<string, string>();
    let cursor = '0';
    do {
      const [next, flat] = await this.redis.hscan(key, cursor, 'COUNT', SCAN_COUNT);
      for (let i = 0; i + 1 < flat.length; i += 2) out.set(flat[i] as string, flat[i + 1] as string);
      cursor = next;
    } while (cursor !== '0');
    return out;
  }

  /** A hash's field names, scanned like scanHash (HKEYS would be one reply of a million names). */
  private async scanFields(key: string): Promise<string[]> {
    const seen = new Set<string>();
    let cursor = '0';
    do {
      const [next, flat] = await this.redis.hscan(key, cursor, 'COUNT', SCAN_COUNT);
      for (let i = 0; i < flat.length; i += 2) seen.add(flat[i] as string);
      cursor = next;
    } while (cursor !== '0');
    return [...seen];
  }

  private async scanHashBuffers(key: string): Promise<Map<string, Buffer>> {
    const out = new Map<string, Buffer>();
    let cursor = '0';
    do {
      const [next, flat] = await this.redis.hscanBuffer(key, cursor, 'COUNT', SCAN_COUNT);
      for (let i = 0; i + 1 < flat.length; i += 2) out.set((flat[i] as Buffer).toString(), flat[i + 1] as Buffer);
      cursor = next.toString();
    } while (cursor !== '0');
    return out;
  }

  /** The names statsd re-emits when idle (known:*), scanned a few thousand at a time. */
  async readKnown(): Promise<Record<KnownType, string[]>> {
    const [counters, timers, sets] = await Promise.all(KNOWN_TYPES.map((t) => this.scanFields(this.keys.known(t))));
    return { counters: counters as string[], timers: timers as string[], sets: sets as string[] };
  }

  /** Changes whenever names leave known:* (the console's del* commands). '' until the first deletion. */
  async knownVersion(): Promise<string> {
    return (await this.redis.get(this.keys.knownVersion)) ?? '';
  }

  /**
   * Adds names to known:* in slices of KNOWN_SLICE. Not fenced and not part of
   * the commit, on purpose: it runs before the commit, so a crash in between
   * leaves the names known (they were seen, and the retried period finds them
   * known), and a cold start with a million new names is many short HSETs,
   * never one script that stalls every merge.
   */
  async rememberKnown(known: Record<KnownType, readonly string[]>): Promise<void> {
    for (const t of KNOWN_TYPES) {
      const names = known[t];
      for (let i = 0; i < names.length; i += KNOWN_SLICE) {
        const fields: string[] = [];
        for (let j = i; j < Math.min(names.length, i + KNOWN_SLICE); j++) fields.push(names[j] as string, '1');
        await this.redis.hset(this.keys.known(t), fields);
      }
    }
  }

  async readGaugeTtl(): Promise<Record<string, string>> {
    return this.redis.hgetall(this.keys.gaugeTtl);
  }

  /** commit-14: publish the period's chunks (and what the outbox bound dropped), drop its state. */
  async commit(token: string, ts: number, p: CommitPayload): Promise<CommitResult> {
    const k = this.keys;
    const keys = [k.lease, k.pending, k.outbox, k.gauges, k.gaugeTtl, k.cur('gauges_touched')];
    for (const part of PERIOD_PARTS) keys.push(k.pendingPart(ts, part));
    keys.push(k.pendingPart(ts, 'gauges'));
    keys.push(k.outboxBytes, k.outboxClaim(OUTBOX_READER));
    // Built with loops, not spreads: these lists can hold a million names.
    const args: ScriptArg[] = [token, ts, p.outboxMaxBytes, p.chunks.length];
    const append = (list: readonly string[]): void => {
      args.push(list.length);
      for (const x of list) args.push(x);
    };
    for (const c of p.chunks) args.push(c);
    args.push(p.gaugeTtl.length);
    for (const [name, ttl] of p.gaugeTtl) args.push(name, ttl);
    append(p.gaugeDeletes);
    const res = (await this.run('commit', keys, args)) as [number, number, number];
    return { status: Number(res[0]), droppedLines: Number(res[1]), droppedBytes: Number(res[2]) };
  }

  /**
   * claimOutbox-4: the entries after a sink's cursor (up to maxBytes, at least
   * one), recorded as its claim so the bound never trims them while they are
   * written. null when the lease is not ours.
   */
  async claimOutbox(token: string, sink: string, maxBytes: number, maxEntries: number): Promise<OutboxEntry[] | null> {
    const k = this.keys;
    const res = (await this.run('claimOutbox', [k.lease, k.outbox, k.outboxAcked(sink), k.outboxClaim(sink)], [token, maxBytes, maxEntries])) as unknown[];
    if (Number(res[0]) !== 1) return null;
    const out: OutboxEntry[] = [];
    for (let i = 1; i + 3 < res.length; i += 4) {
      out.push({ id: String(res[i]), data: String(res[i + 1]), lines: Number(res[i + 2]), bytes: Number(res[i + 3]) });
    }
    return out;
  }

  /** ackOutbox-5: -1 not the leader, 0 nothing new (repeat or older id), 1 acknowledged up to and including id. */
  async ackOutbox(token: string, sink: string, id: string): Promise<number> {
    const k = this.keys;
    return Number(await this.run('ackOutbox', [k.lease, k.outbox, k.outboxBytes, k.outboxAcked(sink), k.outboxClaim(sink)], [token, id]));
  }

  /** statOutbox-2: depth in entries and bytes, and when the oldest entry was added. */
  async outboxStats(): Promise<OutboxStats> {
    const res = (await this.run('statOutbox', [this.keys.outbox, this.keys.outboxBytes], [])) as [number, number, string | null];
    const first = typeof res[2] === 'string' ? Number(res[2].slice(0, res[2].indexOf('-'))) : null;
    return { entries: Number(res[0]), bytes: Number(res[1]), oldestMs: first };
  }

  /** The console's view of the open period (plus known idle names, as statsd shows them). */
  async readCurrent(): Promise<{
    counters: Record<string, string>;
    timers: Map<string, Buffer>;
    gauges: Record<string, string>;
    sets: string[];
    known: Record<KnownType, string[]>;
  }> {
    const k = this.keys;
    const out = results(
      await this.redis
        .pipeline()
        .hgetall(k.cur('counters'))
        .hgetallBuffer(k.cur('timers'))
        .hgetall(k.gauges)
        .hkeys(k.cur('sets'))
        .exec(),
    );
    const timers = new Map<string, Buffer>(Object.entries(out[1] as Record<string, Buffer>));
    return {
      counters: out[0] as Record<string, string>,
      timers,
      gauges: out[2] as Record<string, string>,
      sets: out[3] as string[],
      known: await this.readKnown(),
    };
  }

  /** The console's del* commands: forget names in the open period and in known:*. */
  async deleteNames(type: 'counters' | 'timers' | 'gauges', names: readonly string[]): Promise<void> {
    if (names.length === 0) return;
    const k = this.keys;
    const p = this.redis.pipeline();
    if (type === 'counters') {
      p.hdel(k.cur('counters'), ...names).hdel(k.known('counters'), ...names);
    } else if (type === 'gauges') {
      p.hdel(k.gauges, ...names).hdel(k.gaugeTtl, ...names);
    } else {
      const wanted = new Set(names);
      const fields = (await this.redis.hkeys(k.cur('timers'))).filter((f) => wanted.has(f.slice(0, f.indexOf(FIELD_SEP))));
      if (fields.length > 0) p.hdel(k.cur('timers'), ...fields);
      p.hdel(k.cur('timer_counts'), ...names).hdel(k.known('timers'), ...names);
    }
    p.incr(k.knownVersion);
    results(await p.exec());
  }

  async quit(): Promise<void> {
    try {
      await this.redis.quit();
    } catch {
      this.redis.disconnect();
    }
  }
}

function results(res: Array<[Error | null, unknown]> | null): unknown[] {
  if (!res) throw new StoreError('EREDIS', 'pipeline aborted');
  return res.map(([err, v]) => {
    if (err) throw new StoreError('EREDIS', err.message, { cause: err });
    return v;
  });
}

function withTimeout<T>(p: Promise<T>, ms: number): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const t = setTimeout(() => reject(new Error(`no connection after ${ms} ms`)), ms);
    p.then(
      (v) => {
        clearTimeout(t);
        resolve(v);
      },
      (e: unknown) => {
        clearTimeout(t);
        reject(e instanceof Error ? e : new Error(String(e)));
      },
    );
  });
}

export function redactUrl(url: string): string {
  return url.replace(/\/\/([^@/]*)@/, '//***@');
}
