/**
 * The only module that talks to Redis. Every write that must be atomic goes
 * through a Lua script (./scripts, headers list KEYS/ARGV/returns); reads are
 * pipelined. Methods map one-to-one onto the steps of DESIGN.md's data flow.
 */
import { Redis } from 'ioredis';
import type { RedisConfig } from '../config/types.js';
import type { Logger } from '../observability/logger.js';
import { StoreError } from './errors.js';
import { FIELD_SEP, Keys, KNOWN_TYPES, PERIOD_PARTS, type KnownType } from './keys.js';
import { loadScripts, type ScriptArg, type ScriptFn, type ScriptName } from './scripts.js';

/** A rotated period as stored: the flusher turns it into PeriodData. */
export interface RawPeriod {
  counters: Record<string, string>;
  /** field `name\nbatch` -> packed samples */
  timers: Map<string, Buffer>;
  timerCounts: Record<string, string>;
  /** field `name\nmember` -> '1' */
  sets: Record<string, string>;
  gauges: Record<string, string>;
  gaugesTouched: Record<string, string>;
}

export interface CommitPayload {
  chunks: string[];
  known: Record<KnownType, string[]>;
  gaugeTtl: Array<[string, number]>;
  gaugeDeletes: string[];
  outboxMax: number;
}

const DEDUPE_WINDOW_MS = 15 * 60_000;
/** Fields asked per HSCAN round trip when reading a rotated period. */
const SCAN_COUNT = 5000;

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

  /** merge-8: true when merged, false when this batch id was already merged. */
  async merge(batchId: string, args: ScriptArg[]): Promise<boolean> {
    const k = this.keys;
    const res = await this.run(
      'merge',
      [k.merged, k.cur('counters'), k.cur('timers'), k.cur('timer_counts'), k.cur('sets'), k.gauges, k.cur('gauges_touched'), k.outbox],
      ([batchId, Date.now(), DEDUPE_WINDOW_MS] as ScriptArg[]).concat(args),
    );
    return res === 1;
  }

  async tryAcquireLease(token: string, ttlMs: number): Promise<boolean> {
    const res = await this.redis.set(this.keys.lease, token, 'PX', ttlMs, 'NX');
    if (res === 'OK') return true;
    return (await this.run('renew', [this.keys.lease], [token, ttlMs])) === 1;
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
      this.scanHash(k.pendingPart(ts, 'sets')),
      this.scanHash(k.pendingPart(ts, 'gauges')),
      this.scanHash(k.pendingPart(ts, 'gauges_touched')),
    ]);
    return { counters, timers, timerCounts, sets, gauges, gaugesTouched };
  }

  private async scanHash(key: string): Promise<Record<string, string>> {
    const out: Record<string, string> = Object.create(null) as Record<string, string>;
    let cursor = '0';
    do {
      const [next, flat] = await this.redis.hscan(key, cursor, 'COUNT', SCAN_COUNT);
      for (let i = 0; i + 1 < flat.length; i += 2) out[flat[i] as string] = flat[i + 1] as string;
      cursor = next;
    } while (cursor !== '0');
    return out;
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

  async readKnown(): Promise<Record<KnownType, string[]>> {
    const p = this.redis.pipeline();
    for (const t of KNOWN_TYPES) p.hkeys(this.keys.known(t));
    const out = results(await p.exec());
    return { counters: out[0] as string[], timers: out[1] as string[], sets: out[2] as string[] };
  }

  async readGaugeTtl(): Promise<Record<string, string>> {
    return this.redis.hgetall(this.keys.gaugeTtl);
  }

  /** commit-15: -1 not the leader, 0 already committed, 1 committed (with chunks dropped). */
  async commit(token: string, ts: number, p: CommitPayload): Promise<{ status: number; dropped: number }> {
    const k = this.keys;
    const keys = [k.lease, k.pending, k.outbox, k.gauges, k.gaugeTtl, k.cur('gauges_touched')];
    for (const t of KNOWN_TYPES) keys.push(k.known(t));
    for (const part of PERIOD_PARTS) keys.push(k.pendingPart(ts, part));
    keys.push(k.pendingPart(ts, 'gauges'));
    // Built with loops, not spreads: these lists can hold a million names.
    const args: ScriptArg[] = [token, ts, p.outboxMax, p.chunks.length];
    const append = (list: readonly string[]): void => {
      args.push(list.length);
      for (const x of list) args.push(x);
    };
    for (const c of p.chunks) args.push(c);
    for (const t of KNOWN_TYPES) append(p.known[t]);
    args.push(p.gaugeTtl.length);
    for (const [name, ttl] of p.gaugeTtl) args.push(name, ttl);
    append(p.gaugeDeletes);
    const res = (await this.run('commit', keys, args)) as [number, number];
    return { status: Number(res[0]), dropped: Number(res[1]) };
  }

  outboxHead(n: number): Promise<string[]> {
    return this.redis.lrange(this.keys.outbox, 0, n - 1);
  }

  outboxLength(): Promise<number> {
    return this.redis.llen(this.keys.outbox);
  }

  /** ack-2: false when the lease is no longer ours (nothing trimmed). */
  async ack(token: string, n: number): Promise<boolean> {
    return (await this.run('ack', [this.keys.lease, this.keys.outbox], [token, n])) === 1;
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
