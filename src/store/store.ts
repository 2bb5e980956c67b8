/**
 * The only module that talks to Redis. Every write that must be atomic goes
 * through a Lua script (./scripts, headers list KEYS/ARGV/returns); reads are
 * pipelined. Methods map one-to-one onto the steps of DESIGN.md's data flow.
 */
import { redisNumber } from './redis-number.js';
import { RateLimitedLog } from '../observability/rate-limited-log.js';
import { redactUrl } from '../config/redact.js';
import type { RedisConfig } from '../config/types.js';
import type { Logger } from '../observability/logger.js';
import { withTimeout } from '../clock.js';
import { isCommandTimeout, watchCommandTimeouts } from './command-timeouts.js';
import { clusterTransient, connectFailure, createClient, runConfirmed, type RedisClient, type WaitPolicy } from './client.js';
import { StoreError } from './errors.js';
import { ShardMap } from './shards.js';
import { checkShards } from './shards-record.js';
import { chunkLineCount } from './chunk-lines.js';
import { Keys, KNOWN_TYPES, OUTBOX_READER, type KnownType } from './keys.js';
import { loadScripts, scriptCommand, type ScriptArg, type ScriptFn, type ScriptName } from './scripts.js';
import { markedLate, readPartsSliced, tombstonePart } from './packed-parts.js';
import { partsBudget, UNBOUNDED, type MergeBound } from './bound.js';
import { PartsFolder } from '../flush/fold-parts.js';
import { compactPartsSliced } from '../flush/compact-parts.js';
import { runSliced } from '../flush/slices.js';

export { BYTES_PER_NAME, MIN_PARTS_BUDGET, partsBudget, shardBound, UNBOUNDED, type MergeBound } from './bound.js';

/** A closed period as read and folded: the flusher turns it into PeriodData. */
export interface RawPeriod {
  /** name -> sum of value * (1/rate), in merge order of first appearance. */
  counters: Map<string, number>;
  /** name -> every sample of the period, in merge order. */
  timers: Map<string, number[]>;
  /** name -> sum of 1/rate. */
  timerCounts: Map<string, number>;
  /** name -> distinct members. */
  sets: Map<string, Set<string>>;
  /** Every gauge's value once the period's ops were applied (the snapshot taken at close). */
  gauges: Map<string, string>;
  /** Gauges updated in this period (name -> op). */
  gaugesTouched: Map<string, string>;
  /** Names the bound refused at the fold (counters, timers, sets: once per part that carried them), a few named. */
  dropped: number;
  droppedExamples: string[];
}

/**
 * What a merge did: merged, already merged (a retried batch id), or refused because its period is
 * closed. A merge that dropped names (maxNamesPerPeriod) or clamped gauges says how many, and
 * names a few of the dropped names; the fields are absent when zero. A duplicate carries the
 * first attempt's counts (its reply was lost, so nobody counted them yet).
 */
export type MergeOutcome =
  | { status: 'merged'; namesDropped?: number; droppedExamples?: string[]; clamped?: number }
  | { status: 'duplicate'; namesDropped?: number; clamped?: number }
  | { status: 'late'; closedMs: number };

/** closePeriod-8's answer (see the script's header); clamped (gauges clamped at close) is absent when zero. */
export type CloseOutcome = (
  | { status: 'closed'; clamped?: number }
  | { status: 'not-leader' }
  | { status: 'out-of-order'; closedMs: number }
  | { status: 'waiting'; member: string; watermarkMs: number }
) & {
  /** Members this call judged dead and removed (their heartbeat older than the ttl), with that heartbeat's age; absent when none. */
  gaveUp?: Array<{ member: string; silentMs: number }>;
};

/** o, with the (id, heartbeat age) pairs closePeriod-8 appends to its answer from index `from` as gaveUp (when any). */
function withGaveUp<T extends CloseOutcome>(o: T, res: Array<number | string>, from: number): T {
  if (res.length <= from) return o;
  const gaveUp: Array<{ member: string; silentMs: number }> = [];
  for (let i = from; i + 1 < res.length; i += 2) gaveUp.push({ member: String(res[i]), silentMs: Number(res[i + 1]) });
  return { ...o, gaveUp };
}

export interface CommitPayload {
  /** Outbox chunks of the period ('\n'-terminated lines), one stream entry each. */
  chunks: string[];
  gaugeTtl: Array<[string, number]>;
  gaugeDeletes: string[];
  /** outboxMaxBytes: the commit trims the oldest unclaimed entries beyond it. */
  outboxMaxBytes: number;
  /** This shard's record of the period, kept in its fleet hash (flush/fleet-stats.ts); zeros when absent. */
  fleet?: FleetRecord;
}

/** A shard's self-metrics of one committed period (flush/fleet-stats.ts). */
export interface FleetRecord {
  numStats: number;
  processingMs: number;
  /** statsd's own counters (internalCounterNames order); [] with one shard. */
  counters: number[];
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

/** The outbox's backlog (console `stats`, health). */
export interface OutboxStats {
  entries: number;
  bytes: number;
  /** ms time of the oldest entry's id (when it was added), null when empty. */
  oldestMs: number | null;
}

/** What forgetIdleAfter tracks: the known names per type, and the gauges. */
export const SEEN_TYPES = [...KNOWN_TYPES, 'gauges'] as const;
export type SeenType = (typeof SEEN_TYPES)[number];

/** What Store.open needs of RedisConfig; commandTimeout defaults to DEFAULT_COMMAND_TIMEOUT_MS. */
export type StoreConnectConfig = Pick<RedisConfig, 'url' | 'keyPrefix'>
  & Partial<Pick<RedisConfig, 'nodes' | 'username' | 'password' | 'waitReplicas' | 'waitTimeout' | 'shards'>>
  & { readonly commandTimeout?: number };

/**
 * Scripts WAITed for with redis.waitReplicas (see client.ts). A merge counts
 * only once confirmed: its samples exist nowhere else. A commit is WAITed for
 * too (the leader goes no faster than its replica), but an unconfirmed one
 * still counts as done and is logged: its result (what the outbox bound
 * dropped, the console sink's period) must not be lost to a retry that finds
 * it committed, and if the master dies before passing it on, the replica still
 * holds the period pending, so the next leader computes and sends it again.
 */
const CONFIRMED: ReadonlySet<ScriptName> = new Set(['merge', 'commit']);

export const DEFAULT_COMMAND_TIMEOUT_MS = 10_000;

const DEDUPE_WINDOW_MS = 15 * 60_000;
/** How long a shard's fleet record of a period is kept: shard 0 may lag the others by this much and still sum them. */
const FLEET_KEEP_MS = 60 * 60_000;
/** Fields asked per HSCAN round trip when reading a hash bigger than WHOLE_MAX (a closed period, known names). */
const SCAN_COUNT = 5000;
/**
 * A hash of up to this many fields is read with one HGETALL (Store.readHash): a reply of ~4 MB that the flush
 * thread parses in tens of ms. Not more: a flush thread leading 8 shards sends their reads at once, and with
 * replies of 312k fields (5M names) it spent seconds parsing them, long enough for the later ones' command timers
 * to expire before their replies, already in the socket, were read (52 "Command timed out" in the 5M-names bench).
 */
const WHOLE_MAX = 100_000;
/** Appends ARGV[1] to KEYS[1] if it exists (a tombstone to an open period's parts). */
const APPEND_IF_EXISTS = "if redis.call('EXISTS', KEYS[1]) == 1 then return redis.call('APPEND', KEYS[1], ARGV[1]) end return 0";
/** A period's parts bigger than this are read in GETRANGE slices of it. */
const PARTS_SLICE = 64 * 1024 * 1024;
/** An open period's parts past this are not compacted: the compacted form travels as one script argument (Redis takes 512 MB). */
const MAX_COMPACT_BYTES = 256 * 1024 * 1024;
/** Names per HSET when remembering known names: a million new names never become one long command. */
const KNOWN_SLICE = 5000;

/** What Store.compactPeriod did (bytes of the parts read, written, and in the key after). */
export type CompactOutcome =
  | { status: 'compacted'; bytesIn: number; bytesOut: number; bytesNow: number; partsIn: number; partsOut: number; items: number; busyMs: number }
  | { status: 'kept'; bytesIn: number }
  | { status: 'raced' | 'closed' };

/**
 * A string key's value: one GET when it is at most `slice` bytes, else GETRANGE slices of `slice` bytes copied into
 * one buffer (no reply bigger than a slice). Empty when the key does not exist. A key that changes length while read
 * (it must not: a closed period's parts are only appended to while open) throws rather than return a torn value.
 */
export async function readString(redis: Pick<RedisClient, 'strlen' | 'getBuffer' | 'getrangeBuffer'>, key: string, slice: number): Promise<Buffer> {
  const len = await redis.strlen(key);
  if (len <= slice) return (await redis.getBuffer(key)) ?? Buffer.alloc(0);
  const out = await readPrefix(redis, key, len, slice);
  if (out === null || (await redis.strlen(key)) !== len) throw new StoreError('EREDIS', `${key} changed length while read in slices (was ${len} bytes)`);
  return out;
}

/**
 * The first `len` bytes of a string key that is only appended to (an open period's parts), in GETRANGE slices of
 * `slice` bytes; null when the key holds fewer (it was rewritten since its length was read).
 */
export async function readPrefix(redis: Pick<RedisClient, 'getrangeBuffer'>, key: string, len: number, slice: number): Promise<Buffer | null> {
  if (len === 0) return Buffer.alloc(0);
  const out = Buffer.allocUnsafe(len);
  for (let at = 0; at < len; at += slice) {
    const end = Math.min(len, at + slice);
    const piece = await redis.getrangeBuffer(key, at, end - 1);
    if (piece.length !== end - at) return null;
    piece.copy(out, at);
  }
  return out;
}

/**
 * One shard's view of the state (DESIGN "Shards"): every method works on the
 * keys of `this.shard`. Store.open returns shard 0; `shards` lists every
 * shard's Store (all sharing one connection), `shardOf` says which one holds
 * a name. With one shard (redis.shards: 1) this is the layout of tallyd
 * before shards.
 */
export class Store {
  /** Every shard's Store, in shard order (this one among them); set by Store.open. */
  shards: readonly Store[] = [this];

  private constructor(
    readonly redis: RedisClient,
    readonly keys: Keys,
    private readonly scripts: Record<ScriptName, ScriptFn>,
    private readonly wait: WaitPolicy,
    private readonly commitWait: WaitPolicy,
    /** This store's shard index. */
    readonly shard = 0,
    /** Maps names to shards (shards.ts). */
    readonly shardMap: ShardMap = new ShardMap(1),
    readonly keyPrefix = '',
  ) {}

  /** The shard (index) a stored name, or a passthrough line, belongs to. */
  shardOf(name: string): number {
    return this.shardMap.of(name);
  }

  /** The Store of the shard holding name. */
  storeFor(name: string): Store {
    return this.shards[this.shardMap.of(name)] as Store;
  }

  /**
   * Connects and loads the scripts; one clear error when Redis can't be reached.
   * onCommandTimeout is called for each command that got no reply within
   * cfg.commandTimeout (counted as redis_timeouts), which is also logged.
   */
  static async open(cfg: StoreConnectConfig, log: Logger, connectTimeoutMs = 5000, onCommandTimeout: () => void = () => {}): Promise<Store> {
    const commandTimeout = cfg.commandTimeout ?? DEFAULT_COMMAND_TIMEOUT_MS;
    const redis = createClient(cfg, commandTimeout);
    const where = cfg.nodes !== undefined && cfg.nodes.length > 0 ? `redis cluster nodes ${cfg.nodes.join(',')}` : redactUrl(cfg.url);
    const wait: WaitPolicy = { replicas: cfg.waitReplicas ?? 0, timeoutMs: cfg.waitTimeout ?? 1000 };
    watchCommandTimeouts(redis, commandTimeout, log, onCommandTimeout);
    let lastError: Error | undefined;
    redis.on('error', (err: Error) => {
      lastError = err;
    });
    try {
      await withTimeout(redis.connect(), connectTimeoutMs);
    } catch (err) {
      redis.disconnect();
      const { why, auth } = connectFailure(lastError ?? (err as Error));
      if (auth) {
        throw new StoreError('EREDIS_AUTH', `redis at ${where} refused tallyd's credentials (redis.username, redis.password): ${why}`, { cause: err });
      }
      throw new StoreError('EREDIS_UNREACHABLE', `redis unreachable at ${where}: ${why}`, { cause: err });
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
      const unconfirmed = new RateLimitedLog(log);
      const commitWait: WaitPolicy = { ...wait, onUnconfirmed: (acked) => unconfirmed.warn(() => ({
        msg: 'a commit was not confirmed by redis.waitReplicas replicas within redis.waitTimeout; counted as done (a failover would recompute it)',
        fields: { acked, waitReplicas: wait.replicas, waitTimeout: wait.timeoutMs },
      })) };
      const scripts = await loadScripts(redis);
      const count = await checkShards(redis, cfg.keyPrefix, cfg.shards ?? 1);
      const map = new ShardMap(count);
      const shards = map.tags.map((tag, i) => new Store(redis, new Keys(cfg.keyPrefix, tag), scripts, wait, commitWait, i, map, cfg.keyPrefix));
      for (const st of shards) st.shards = shards;
      return shards[0] as Store;
    } catch (err) {
      redis.disconnect();
      throw err;
    }
  }

  private async run(name: ScriptName, keys: string[], args: ScriptArg[]): Promise<unknown> {
    const keysAndArgs = (keys as ScriptArg[]).concat(args);
    if (this.wait.replicas > 0 && CONFIRMED.has(name)) {
      return runConfirmed(this.redis, scriptCommand(name), keysAndArgs, name === 'commit' ? this.commitWait : this.wait);
    }
    try {
      return await this.scripts[name](keysAndArgs);
    } catch (err) {
      throw clusterTransient(this.redis, err);
    }
  }

  /**
   * mergeBatch-11: fold a batch into the period it was received in
   * (boundaryMs, the period's boundary) and record the member's watermark:
   * its packed part appended, its gauges merged; the period takes at most
   * bound.maxNames distinct names (the gauges here, the rest at the fold) and
   * partsBudget(bound.maxNames) bytes of parts. args: encodeMergeParts's.
   */
  async merge(
    batchId: string,
    boundaryMs: number,
    memberId: string,
    watermarkMs: number,
    args: ScriptArg[],
    late = false,
    bound: MergeBound = UNBOUNDED,
  ): Promise<MergeOutcome> {
    const k = this.keys;
    // A late batch's parts say so (the fold reads it); copies, so that the args of a retry stay as encoded.
    const parts = late ? args.map((a, i) => (i < 2 && Buffer.isBuffer(a) ? markedLate(a) : a)) : args;
    const res = (await this.run(
      'merge',
      [k.merged, k.closed, k.members, k.open, k.period(boundaryMs, 'parts'), k.period(boundaryMs, 'gauges'), k.outbox, k.outboxBytes,
        k.gauges, k.period(boundaryMs, 'names'), k.mergedCounts(batchId)],
      ([batchId, Date.now(), DEDUPE_WINDOW_MS, boundaryMs, memberId, watermarkMs, late ? '1' : '0', bound.maxNames, partsBudget(bound.maxNames)] as ScriptArg[]).concat(parts),
    ).catch(async (err: unknown) => {
      // Redis answers but no replica confirmed: this member is alive and still holds the batch's period, so the
      // leader must keep waiting for it (its retries are duplicates, which record no heartbeat).
      if (err instanceof StoreError && err.code === 'EREDIS_WAIT') await this.heartbeat(memberId, Math.min(boundaryMs, watermarkMs)).catch(() => undefined);
      throw err;
    })) as Array<number | string>;
    const status = Number(res[0]);
    if (status === -2) return { status: 'late', closedMs: Number(res[1]) };
    const dropped = Number(res[1] ?? 0);
    const clamped = Number(res[2] ?? 0);
    const out: MergeOutcome = status === 1 ? { status: 'merged' } : { status: 'duplicate' };
    if (dropped > 0) out.namesDropped = dropped;
    if (dropped > 0 && out.status === 'merged') out.droppedExamples = res.slice(3).map(String);
    if (clamped > 0) out.clamped = clamped;
    return out;
  }

  /** Records that a member lives and the oldest period it may still hold samples of. */
  async heartbeat(memberId: string, watermarkMs: number): Promise<void> {
    await this.redis.hset(this.keys.members, memberId, `${Date.now()} ${watermarkMs}`);
  }

  /** A member that stopped cleanly (everything merged): the leader no longer waits for it. */
  async leave(memberId: string): Promise<void> {
    await this.redis.hdel(this.keys.members, memberId);
  }

  /** acquireLease-1: 2 taken, 1 renewed, 0 held by another process. */
  async tryAcquireLease(token: string, ttlMs: number): Promise<number> {
    return Number(await this.run('lease', [this.keys.lease], [token, ttlMs]));
  }

  /** The token holding the lease, or null. */
  leaseHolder(): Promise<string | null> {
    return this.redis.get(this.keys.lease);
  }

  async releaseLease(token: string): Promise<void> {
    await this.run('releaseLease', [this.keys.lease], [token]);
  }

  /** The last closed period (null before the first close) and the oldest period holding data (null when none). */
  async closeState(): Promise<{ closedMs: number | null; oldestOpenMs: number | null }> {
    const k = this.keys;
    const out = results(await this.redis.pipeline().get(k.closed).zrange(k.open, 0, 0).exec());
    const closed = out[0] as string | null;
    const open = out[1] as string[];
    return { closedMs: closed === null ? null : Number(closed), oldestOpenMs: open[0] === undefined ? null : Number(open[0]) };
  }

  /** closePeriod-8: close period boundaryMs if it is next and every live member has merged its samples of it. */
  async closePeriod(token: string, boundaryMs: number, memberTtlMs: number, steadySinceMs: number, nowMs = Date.now()): Promise<CloseOutcome> {
    const k = this.keys;
    const res = (await this.run(
      'close',
      [k.lease, k.closed, k.members, k.open, k.pending, k.gauges, k.period(boundaryMs, 'gauges'), k.period(boundaryMs, 'gauge_values')],
      [token, boundaryMs, nowMs, memberTtlMs, steadySinceMs],
    )) as Array<number | string>;
    switch (Number(res[0])) {
      case 1:
        return withGaveUp(Number(res[1] ?? 0) > 0 ? { status: 'closed', clamped: Number(res[1]) } : { status: 'closed' }, res, 2);
      case -1:
        return { status: 'not-leader' };
      case 2:
        return withGaveUp({ status: 'waiting', member: String(res[1]), watermarkMs: Number(res[2]) }, res, 3);
      default:
        return { status: 'out-of-order', closedMs: Number(res[1]) };
    }
  }

  async pendingPeriods(): Promise<number[]> {
    return (await this.redis.zrange(this.keys.pending, 0, -1)).map(Number);
  }

  /**
   * Reads a closed period: its packed parts folded in merge order (no merge
   * reaches a closed period, so they no longer change), the bound admitting
   * counters, timers and sets after the gauges the merges admitted; the gauge
   * snapshot and ops from their hashes (readHash). The fold takes turns with
   * the event loop a part at a time (slices.ts), so a flush thread folding a
   * big period still renews its leases.
   */
  async readPeriod(ts: number, bound: MergeBound = UNBOUNDED): Promise<RawPeriod> {
    const k = this.keys;
    const [parts, count, gauges, gaugesTouched] = await Promise.all([
      this.readParts(k.period(ts, 'parts')),
      this.redis.get(k.period(ts, 'names')),
      this.readHash(k.period(ts, 'gauge_values')),
      this.readHash(k.period(ts, 'gauges')),
    ]);
    const folder = new PartsFolder({ maxNames: bound.maxNames, exemptPrefix: bound.exemptPrefix, held: () => false, count: Number(count ?? 0) });
    await runSliced(readPartsSliced(parts, folder));
    let dropped = 0;
    const droppedExamples: string[] = [];
    for (const o of folder.outcomes) {
      dropped += o.dropped;
      for (const e of o.examples) if (droppedExamples.length < 5) droppedExamples.push(e);
    }
    return { counters: folder.counters, timers: folder.timers, timerCounts: folder.timerCounts, sets: folder.sets, gauges, gaugesTouched, dropped, droppedExamples };
  }

  /** A period's packed parts: one GET, or GETRANGE slices of PARTS_SLICE bytes for a big one (a reply stays bounded). */
  private readParts(key: string): Promise<Buffer> {
    return readString(this.redis, key, PARTS_SLICE);
  }

  /**
   * A hash's fields and values: up to WHOLE_MAX fields in one HGETALL, a bigger
   * hash with HSCAN, SCAN_COUNT fields per round trip (a field HSCAN returns
   * twice lands on the same key), so no reply is bigger than WHOLE_MAX fields.
   * HGETALL costs Redis a third of HSCAN's time per field (~0.2 against ~0.6 µs,
   * bench/micro/flush-profile.ts); a 16-shard period of 1M names is ~62k fields a shard.
   */
  private async readHash(key: string): Promise<Map<string, string>> {
    const out = new Map<string, string>();
    if (await this.fitsOneReply(key)) {
      const flat = (await this.redis.call('HGETALL', key)) as string[];
      for (let i = 0; i + 1 < flat.length; i += 2) out.set(flat[i]!, flat[i + 1]!);
    } else {
      await this.scan(key, (field, value) => out.set(field, value));
    }
    return out;
  }

  /** A hash's field names, read like readHash. */
  private async readFields(key: string): Promise<string[]> {
    return (await this.fitsOneReply(key)) ? this.redis.hkeys(key) : this.scanFields(key);
  }

  /** A hash's field names with HSCAN, SCAN_COUNT a round trip (a field HSCAN returns twice is listed once). */
  private async scanFields(key: string): Promise<string[]> {
    const seen = new Set<string>();
    await this.scan(key, (field) => seen.add(field));
    return [...seen];
  }

  private async fitsOneReply(key: string): Promise<boolean> {
    return (await this.redis.hlen(key)) <= WHOLE_MAX;
  }

  /** Every field and value of a hash with HSCAN, SCAN_COUNT fields a round trip. */
  private async scan(key: string, each: (field: string, value: string) => void): Promise<void> {
    let cursor = '0';
    do {
      const [next, flat] = await this.redis.hscan(key, cursor, 'COUNT', SCAN_COUNT);
      for (let i = 0; i + 1 < flat.length; i += 2) each(flat[i] as string, flat[i + 1] as string);
      cursor = next;
    } while (cursor !== '0');
  }

  /**
   * The names statsd re-emits when idle (known:*), scanned a few thousand at a time: the console's listings read
   * them, up to mgmtMaxConcurrent at once, and a listing that takes turns with the event loop keeps the memory of
   * the concurrent ones bounded (console-bounds.test.ts; one HKEYS a hash let answered listings' garbage pile up to
   * 303 MB there).
   */
  async readKnown(): Promise<Record<KnownType, string[]>> {
    const [counters, timers, sets] = await Promise.all(KNOWN_TYPES.map((t) => this.scanFields(this.keys.known(t))));
    return { counters: counters as string[], timers: timers as string[], sets: sets as string[] };
  }

  /** Changes whenever names leave known:* (the console's del* commands). '' until the first deletion. */
  async knownVersion(): Promise<string> {
    return (await this.redis.get(this.keys.knownVersion)) ?? '';
  }

  /**
   * Records that names were seen at seenMs: known:* (adding new names) and
   * gauge_seen, in slices of KNOWN_SLICE. Not fenced and not part of the
   * commit, on purpose: it runs before the commit, so a crash in between
   * leaves the names known (they were seen, and the retried period finds them
   * known), and a cold start with a million new names is many short HSETs,
   * never one script that stalls every merge.
   */
  async rememberSeen(lists: Partial<Record<SeenType, readonly string[]>>, seenMs: number): Promise<void> {
    const at = String(seenMs);
    for (const t of SEEN_TYPES) {
      const names = lists[t] ?? [];
      const key = t === 'gauges' ? this.keys.gaugeSeen : this.keys.known(t);
      for (let i = 0; i < names.length; i += KNOWN_SLICE) {
        const fields: string[] = [];
        for (let j = i; j < Math.min(names.length, i + KNOWN_SLICE); j++) fields.push(names[j] as string, at);
        await this.redis.hset(key, fields);
      }
    }
  }

  /**
   * Every known name and gauge with the time (ms) it was last seen. A name
   * without one (stored before these times were recorded: '1', or a gauge
   * without one) gets unknownMs and is listed in unrecorded.
   */
  async readSeen(unknownMs: number): Promise<{ seen: Record<SeenType, Map<string, number>>; unrecorded: Record<SeenType, string[]> }> {
    const k = this.keys;
    const [counters, timers, sets, gaugeSeen, gauges] = await Promise.all([
      ...KNOWN_TYPES.map((t) => this.readHash(k.known(t))),
      this.readHash(k.gaugeSeen),
      this.readFields(k.gauges),
    ]) as [Map<string, string>, Map<string, string>, Map<string, string>, Map<string, string>, string[]];
    const unrecorded: Record<SeenType, string[]> = { counters: [], timers: [], sets: [], gauges: [] };
    const times = (t: SeenType, m: Map<string, string>): Map<string, number> => {
      const out = new Map<string, number>();
      for (const [name, v] of m) {
        const at = v === '1' ? NaN : Number(v);
        if (at === at) out.set(name, at);
        else {
          out.set(name, unknownMs);
          unrecorded[t].push(name);
        }
      }
      return out;
    };
    const g = times('gauges', gaugeSeen);
    for (const name of gauges) {
      if (!g.has(name)) {
        g.set(name, unknownMs);
        unrecorded.gauges.push(name);
      }
    }
    return { seen: { counters: times('counters', counters), timers: times('timers', timers), sets: times('sets', sets), gauges: g }, unrecorded };
  }

  /**
   * forgetIdle-11: forgets the given names whose stored last-seen time is before cutoffMs, but no gauge with an op in a
   * period still open (the script checks it was given every open period). null: not the leader.
   */
  async forgetIdle(
    token: string,
    cutoffMs: number,
    lists: Record<SeenType, readonly string[]>,
  ): Promise<{ forgotten: number; removed: number; versionBefore: string; versionAfter: string } | null> {
    const k = this.keys;
    const open = await this.redis.zrange(k.open, 0, 1);
    const args: ScriptArg[] = [token, cutoffMs, open[0] ?? '', open[1] ?? ''];
    // Any key of the same hash tag stands in for a period that is not there (the script reads nothing from it then).
    const gaugeKey = (b: string | undefined): string => k.period(b === undefined ? 0 : Number(b), 'gauges');
    for (const t of SEEN_TYPES) {
      args.push(lists[t].length);
      for (const name of lists[t]) args.push(name);
    }
    const res = (await this.run('forgetIdle', [k.lease, k.known('counters'), k.known('timers'), k.known('sets'), k.gauges, k.gaugeTtl, k.gaugeSeen,
      k.knownVersion, k.open, gaugeKey(open[0]), gaugeKey(open[1])], args)) as Array<number | string>;
    if (Number(res[0]) !== 1) return null;
    return { forgotten: Number(res[1]), removed: Number(res[2]), versionBefore: String(res[3] ?? ''), versionAfter: String(res[4] ?? '') };
  }

  async readGaugeTtl(): Promise<Record<string, string>> {
    return this.redis.hgetall(this.keys.gaugeTtl);
  }

  /**
   * commitPeriod-14: publish the period's chunks (and what the outbox bound dropped), drop its state, note the commit
   * and its fleet record.
   */
  async commit(token: string, ts: number, p: CommitPayload): Promise<CommitResult> {
    const k = this.keys;
    const keys = [k.lease, k.pending, k.outbox, k.gauges, k.gaugeTtl, k.lastCommit, ...k.periodKeys(ts), k.outboxBytes, k.outboxClaim(OUTBOX_READER), k.fleet];
    // Built with loops, not spreads: these lists can hold a million names.
    const args: ScriptArg[] = [token, ts, p.outboxMaxBytes, p.chunks.length];
    const append = (list: readonly string[]): void => {
      args.push(list.length);
      for (const x of list) args.push(x);
    };
    for (const c of p.chunks) args.push(c, chunkLineCount(c));
    args.push(p.gaugeTtl.length);
    for (const [name, ttl] of p.gaugeTtl) args.push(name, ttl);
    append(p.gaugeDeletes);
    const f = p.fleet ?? { numStats: 0, processingMs: 0, counters: [] };
    args.push([Math.round(f.numStats), Math.round(f.processingMs), ...f.counters.map(String)].join(' '), FLEET_KEEP_MS);
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

  /** This shard's record of the period at boundaryMs (commitPeriod-14), or null if it has none (skipped or trimmed). */
  async fleetRecord(boundaryMs: number): Promise<FleetRecord | null> {
    const v = await this.redis.hget(this.keys.fleet, String(boundaryMs));
    if (v === null) return null;
    const [num, ms, ...counters] = v.split(' ');
    return { numStats: Number(num), processingMs: Number(ms), counters: counters.map(Number) };
  }

  /** Boundary (ms) of the last period anyone committed on this prefix, or null if none yet. */
  async lastCommitted(): Promise<number | null> {
    const v = await this.redis.get(this.keys.lastCommit);
    return v === null ? null : Number(v);
  }

  /**
   * Round-trip time of a PING, ms. Fails at once when the connection is not
   * ready, and after timeoutMs when Redis does not answer (a paused Redis
   * keeps the connection up).
   */
  async ping(timeoutMs: number): Promise<number> {
    if (this.redis.status !== 'ready') throw new StoreError('EREDIS_UNREACHABLE', `redis connection is ${this.redis.status}`);
    const t0 = performance.now();
    const pong = this.redis.ping();
    pong.catch(() => undefined); // a late failure after the timeout below is of no interest
    const what = `no PING reply within ${timeoutMs} ms`;
    await withTimeout(pong, timeoutMs, what).catch((err: unknown) => {
      throw isCommandTimeout(err) ? new Error(what) : err; // commandTimeout is the caller's bound (daemon: the smaller)
    });
    return performance.now() - t0;
  }

  /** Periods (boundary ms) that received data and are not closed yet, oldest first. */
  private async openPeriods(): Promise<number[]> {
    return (await this.redis.zrange(this.keys.open, 0, -1)).map(Number);
  }

  /** Each open period's boundary (ms) and the bytes of its parts, oldest first: what the leader may compact. */
  async openPartsSizes(): Promise<Array<{ boundaryMs: number; bytes: number }>> {
    const periods = await this.openPeriods();
    if (periods.length === 0) return [];
    const p = this.redis.pipeline();
    for (const ts of periods) p.strlen(this.keys.period(ts, 'parts'));
    const out = results(await p.exec());
    return periods.map((boundaryMs, i) => ({ boundaryMs, bytes: Number(out[i]) }));
  }

  /**
   * The leader's compaction of an open period's parts (flush/compact-parts.ts): reads the parts appended so far,
   * rewrites them with each name once, and puts that in their place (compactParts-3; what was appended meanwhile
   * stays after it). 'raced' when another compaction came between (nothing changed), 'closed' when the period was
   * closed meanwhile, 'kept' when the parts hold what is not compacted (gauges; a tombstone with sets).
   */
  async compactPeriod(boundaryMs: number): Promise<CompactOutcome> {
    const read = await this.readForCompaction(boundaryMs);
    if (read === null) return { status: 'raced' };
    if (read.parts.length > MAX_COMPACT_BYTES) return { status: 'kept', bytesIn: read.parts.length };
    const { value: c, busyMs } = await runSliced(compactPartsSliced(read.parts));
    // Not compacted (gauges), or no smaller (a flood of new names, each once: the compacted items carry their part
    // counts): kept as it is, so the merges' byte budget is not spent on a compaction.
    if (c === null || c.bytes.length >= read.parts.length) return { status: 'kept', bytesIn: read.parts.length };
    const put = await this.putCompaction(boundaryMs, read.compactions, read.parts.length, c.bytes);
    if (put.status !== 'compacted') return put;
    return { status: 'compacted', bytesIn: read.parts.length, bytesOut: c.bytes.length, bytesNow: put.bytesNow, partsIn: c.partsIn, partsOut: c.partsOut, items: c.items, busyMs };
  }

  /**
   * An open period's parts as appended so far, and the compactions they have had (the guard): read together in one
   * MULTI, or, past PARTS_SLICE bytes, in GETRANGE slices between two reads of the count; null when another
   * compaction rewrote the parts meanwhile.
   */
  async readForCompaction(boundaryMs: number): Promise<{ parts: Buffer; compactions: number } | null> {
    const partsKey = this.keys.period(boundaryMs, 'parts');
    const countKey = this.keys.period(boundaryMs, 'compactions');
    const len = await this.redis.strlen(partsKey);
    if (len <= PARTS_SLICE) {
      const [count, parts] = results(await this.redis.multi().get(countKey).getBuffer(partsKey).exec()) as [string | null, Buffer | null];
      return { parts: parts ?? Buffer.alloc(0), compactions: Number(count ?? 0) };
    }
    const count = await this.redis.get(countKey);
    const parts = await readPrefix(this.redis, partsKey, len, PARTS_SLICE);
    if (parts === null || (await this.redis.get(countKey)) !== count) return null;
    return { parts, compactions: Number(count ?? 0) };
  }

  /**
   * compactParts-3: the compacted form of the first readBytes bytes of the period's parts put in their place, if the
   * period is still open and the parts had `compactions` compactions (none since they were read).
   */
  async putCompaction(boundaryMs: number, compactions: number, readBytes: number, compacted: Buffer): Promise<{ status: 'compacted'; bytesNow: number } | { status: 'raced' | 'closed' }> {
    const k = this.keys;
    const res = (await this.run('compact', [k.closed, k.period(boundaryMs, 'parts'), k.period(boundaryMs, 'compactions')], [boundaryMs, compactions, readBytes, compacted])) as [number, number | string];
    if (Number(res[0]) === 1) return { status: 'compacted', bytesNow: Number(res[1]) };
    return { status: res[1] === 'closed' ? 'closed' : 'raced' };
  }

  /**
   * The console's view of what is not flushed yet: every open period summed
   * (counters added, timer samples and set members together), the gauges as
   * they will be once the open periods' ops are applied in order, plus the
   * known idle names, as statsd shows them.
   */
  async readCurrent(): Promise<{
    counters: Map<string, number>;
    timers: Map<string, number[]>;
    gauges: Record<string, string>;
    sets: Map<string, Set<string>>;
    known: Record<KnownType, string[]>;
  }> {
    const k = this.keys;
    const periods = await this.openPeriods();
    const p = this.redis.pipeline().hgetall(k.gauges);
    for (const ts of periods) p.getBuffer(k.period(ts, 'parts')).hgetall(k.period(ts, 'gauges'));
    const out = results(await p.exec());
    const gauges = out[0] as Record<string, string>;
    // Every open period's parts folded into one, in period order, as their leaders will fold them (unbounded: the
    // bound is applied at flush): counters summed, timer samples and set members together. A del* tombstone goes to
    // every open period, so folding them as one takes out the same names.
    const folder = new PartsFolder({ maxNames: 0, exemptPrefix: '', held: () => false });
    for (let i = 0; i < periods.length; i++) {
      const at = 1 + i * 2;
      await runSliced(readPartsSliced((out[at] as Buffer | null) ?? Buffer.alloc(0), folder));
      for (const [n, op] of Object.entries(out[at + 1] as Record<string, string>)) {
        const v = redisNumber(op.slice(1));
        gauges[n] = String(op[0] === 'd' ? redisNumber(gauges[n] ?? '0') + v : v);
      }
    }
    return { counters: folder.counters, timers: folder.timers, gauges, sets: folder.sets, known: await this.readKnown() };
  }

  /**
   * The console's del* commands: forget names in the open periods and in known:*. Counters and timers leave an
   * open period's parts by a tombstone part appended after them (packed-parts.ts), which the fold applies in order.
   */
  async deleteNames(type: 'counters' | 'timers' | 'gauges', names: readonly string[]): Promise<void> {
    if (names.length === 0) return;
    const k = this.keys;
    const periods = await this.openPeriods();
    const p = this.redis.pipeline();
    if (type === 'gauges') {
      for (const ts of periods) p.hdel(k.period(ts, 'gauges'), ...names);
      p.hdel(k.gauges, ...names).hdel(k.gaugeTtl, ...names).hdel(k.gaugeSeen, ...names);
    } else {
      const tombstone = type === 'counters' ? tombstonePart(names, []) : tombstonePart([], names);
      // Only to periods that exist: APPEND would make a closed (already read) period's key again.
      for (const ts of periods) p.eval(APPEND_IF_EXISTS, 1, k.period(ts, 'parts'), tombstone);
      p.hdel(k.known(type), ...names);
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

