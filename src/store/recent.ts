/**
 * The recent committed periods, kept in Redis for the HTTP API
 * (/api/names, /api/series): fleet-wide (any process on the prefix reads
 * them, leader or not, fresh or not) and without Carbon.
 *
 * Layout (keys.ts): one hash per kept period, `recent:<boundaryMs>`
 * (Graphite name -> value), a sorted set `recent` of the kept boundaries,
 * and a hash `recent_bytes` (boundary -> bytes of the period's Graphite
 * lines, `name value ts\n`). The leader's flush thread appends each period
 * it committed (sink/history/history-sink.ts), best-effort: a failure here
 * never touches the commit, the outbox or delivery.
 *
 * The memory bound: the newest periods whose lines add up to at most
 * maxBytes, and at most maxPeriods of them; older ones are deleted after
 * each append, and every hash expires after ttlMs in case no leader trims.
 * So the periods covered are min(maxPeriods, maxBytes / bytes of one
 * period): 32 MiB at 10,000 names of ~60 bytes each is ~55 periods. A
 * period larger than maxBytes alone is not kept (the caller counts it).
 *
 * Reads are in pieces: HSCAN COUNT SCAN_COUNT with a setImmediate between
 * round trips, since they run on the ingest thread.
 *
 * With shards, each shard's leader keeps its shard's periods under that
 * shard's keys (a RecentPeriods per shard); RecentShards reads them all as
 * one history for the HTTP API.
 */
import { setImmediate as turn } from 'node:timers/promises';
import type { RedisClient } from './client.js';
import type { Keys } from './keys.js';

/** Fields per HSET when writing a period, and per HSCAN round trip when searching one. */
const WRITE_SLICE = 2000;
const SCAN_COUNT = 1000;

export interface RecentBounds {
  readonly maxBytes: number;
  readonly maxPeriods: number;
  /** Each period's hash expires after this long (a safety net; trimming deletes them first). */
  readonly ttlMs: number;
}

export interface NamesAnswer {
  /** Boundary of the period searched (the newest kept), or null when none is kept. */
  boundaryMs: number | null;
  names: string[];
  /** More names matched than `limit`. */
  truncated: boolean;
}

/** `*`, `?`, `[`, `]` and `\` stand for themselves in an HSCAN MATCH pattern once escaped. */
export function globEscape(text: string): string {
  return text.replace(/[*?[\]\\]/g, (c) => `\\${c}`);
}

/** A MULTI's replies carry each command's error rather than rejecting: the first one is thrown. */
function execOrThrow(replies: Array<[Error | null, unknown]> | null): void {
  if (replies === null) throw new Error('transaction aborted');
  for (const [err] of replies) if (err) throw err;
}

export class RecentPeriods {
  constructor(
    private readonly redis: RedisClient,
    private readonly keys: Keys,
  ) {}

  /**
   * Keeps one committed period (names and values, Graphite line bytes), then
   * deletes the oldest beyond the bounds; returns how many periods it deleted.
   * Appending the same period again (a replayed commit) rewrites it.
   */
  async append(boundaryMs: number, names: readonly string[], values: readonly string[], bytes: number, bounds: RecentBounds): Promise<number> {
    const { redis, keys } = this;
    const key = keys.recentPeriod(boundaryMs);
    await redis.unlink(key);
    for (let i = 0; i < names.length; i += WRITE_SLICE) {
      const args: string[] = [];
      for (let j = i; j < Math.min(names.length, i + WRITE_SLICE); j++) args.push(names[j] as string, values[j] as string);
      await redis.hset(key, ...args);
      await turn();
    }
    // Listed only once complete, so a reader never sees half a period.
    execOrThrow(
      await redis
        .multi()
        .pexpire(key, bounds.ttlMs)
        .zadd(keys.recent, boundaryMs, String(boundaryMs))
        .hset(keys.recentBytes, String(boundaryMs), String(bytes))
        .exec(),
    );
    return this.trim(bounds, boundaryMs);
  }

  /** Deletes the oldest kept periods beyond maxPeriods, maxBytes, or older than ttlMs before newestMs. */
  private async trim(bounds: RecentBounds, newestMs: number): Promise<number> {
    const { redis, keys } = this;
    const [kept, sizes] = await Promise.all([redis.zrange(keys.recent, 0, -1), redis.hgetall(keys.recentBytes)]);
    let total = 0;
    for (const b of kept) total += Number(sizes[b] ?? 0);
    const doomed: string[] = [];
    for (const b of kept) {
      const left = kept.length - doomed.length;
      if (left <= bounds.maxPeriods && total <= bounds.maxBytes && Number(b) >= newestMs - bounds.ttlMs) break;
      doomed.push(b);
      total -= Number(sizes[b] ?? 0);
    }
    // Sizes of periods no longer listed (a trim that died half way) go too.
    const orphans = Object.keys(sizes).filter((b) => !kept.includes(b));
    if (doomed.length === 0 && orphans.length === 0) return 0;
    const tx = redis.multi();
    if (doomed.length > 0) tx.zrem(keys.recent, ...doomed).unlink(...doomed.map((b) => keys.recentPeriod(Number(b))));
    const fields = [...doomed, ...orphans];
    if (fields.length > 0) tx.hdel(keys.recentBytes, ...fields);
    execOrThrow(await tx.exec());
    return doomed.length;
  }

  /** Boundaries (ms) of the kept periods, oldest first. */
  async periods(): Promise<number[]> {
    return (await this.redis.zrange(this.keys.recent, 0, -1)).map(Number);
  }

  /** Names of the newest kept period containing q (case-sensitive), sorted, at most limit. */
  async names(q: string, limit: number): Promise<NamesAnswer> {
    const newest = await this.redis.zrange(this.keys.recent, -1, -1);
    if (newest.length === 0) return { boundaryMs: null, names: [], truncated: false };
    const boundaryMs = Number(newest[0]);
    const key = this.keys.recentPeriod(boundaryMs);
    const pattern = `*${globEscape(q)}*`;
    const found = new Set<string>();
    let cursor = '0';
    do {
      const [next, flat] = await this.redis.hscan(key, cursor, 'MATCH', pattern, 'COUNT', SCAN_COUNT);
      cursor = next;
      for (let i = 0; i < flat.length; i += 2) found.add(flat[i] as string);
      if (cursor !== '0') await turn();
    } while (cursor !== '0' && found.size <= limit);
    const names = [...found].sort();
    return { boundaryMs, names: names.slice(0, limit), truncated: names.length > limit || cursor !== '0' };
  }

  /** One name's values over the kept periods, oldest first (null where a period has no such name). */
  async series(name: string): Promise<{ t: number[]; v: Array<number | null> }> {
    const kept = await this.periods();
    const pipe = this.redis.pipeline();
    for (const b of kept) pipe.hget(this.keys.recentPeriod(b), name);
    const res = kept.length === 0 ? [] : ((await pipe.exec()) ?? []);
    const v = res.map(([err, val]) => (err || typeof val !== 'string' ? null : Number(val)));
    return { t: kept.map((b) => Math.round(b / 1000)), v };
  }
}

/**
 * Every shard's kept periods as one history (the HTTP API's view): a name
 * lives in one shard, so its values come from the shard that has it, and a
 * listing merges every shard's names. With one shard it answers exactly as
 * that shard's RecentPeriods.
 */
export class RecentShards {
  constructor(private readonly shards: readonly Pick<RecentPeriods, 'names' | 'series' | 'periods'>[]) {}

  /** Boundaries (ms) kept by any shard, oldest first. */
  async periods(): Promise<number[]> {
    const all = await Promise.all(this.shards.map((s) => s.periods()));
    return [...new Set(all.flat())].sort((a, b) => a - b);
  }

  /**
   * Names containing q in each shard's newest kept period (shards commit each period on their own, so one may be a
   * period behind another), merged, sorted, at most limit; boundaryMs is the newest of those periods.
   */
  async names(q: string, limit: number): Promise<NamesAnswer> {
    const answers = await Promise.all(this.shards.map((s) => s.names(q, limit)));
    let boundaryMs: number | null = null;
    let truncated = false;
    const found = new Set<string>();
    for (const a of answers) {
      if (a.boundaryMs !== null && (boundaryMs === null || a.boundaryMs > boundaryMs)) boundaryMs = a.boundaryMs;
      truncated ||= a.truncated;
      for (const n of a.names) found.add(n);
    }
    const names = [...found].sort();
    return { boundaryMs, names: names.slice(0, limit), truncated: truncated || names.length > limit };
  }

  /** One name's values over the periods kept by any shard, oldest first: each from the shard that has it, else null. */
  async series(name: string): Promise<{ t: number[]; v: Array<number | null> }> {
    const per = await Promise.all(this.shards.map((s) => s.series(name)));
    if (per.length === 1) return per[0] as { t: number[]; v: Array<number | null> };
    const at = new Map<number, number | null>();
    for (const { t, v } of per) {
      for (let i = 0; i < t.length; i++) {
        const ts = t[i] as number;
        const val = v[i] ?? null;
        if (val !== null) at.set(ts, val);
        else if (!at.has(ts)) at.set(ts, null);
      }
    }
    const t = [...at.keys()].sort((a, b) => a - b);
    return { t, v: t.map((ts) => at.get(ts) ?? null) };
  }
}
