/**
 * The leader's copy of the names statsd re-emits while idle (known:*) and of
 * the gauges, each with the time (ms) the leader last saw a sample of it, and
 * forgetIdleAfter: names idle longer than that are forgotten, as a statsd
 * restart would forget them (no more re-emission, gone from Redis).
 *
 * Cost: a name's last-seen time is written only when it is new or when the
 * stored one is older than a tenth of forgetIdleAfter (R), so a steady name
 * costs one HSET per R, not one per flush; a name is forgotten once its
 * stored time is older than forgetIdleAfter + R, i.e. after between
 * forgetIdleAfter and 1.1 x forgetIdleAfter without a sample. Sweeps run
 * every min(R, 60 s), forget at most FORGET_MAX names each (one short
 * script, fenced by the lease; the rest follow at the next flushes), and
 * bump known_version. Only the leader adds or refreshes names, and every
 * deletion bumps known_version, so the copy is re-read when that changed
 * (console del*, another leader) and whenever this process becomes the
 * leader again (reset()).
 */
import type { Logger } from '../observability/logger.js';
import { RateLimitedLog } from '../observability/rate-limited-log.js';
import type { SelfStats } from '../observability/self-stats.js';
import type { KnownType } from '../store/keys.js';
import { SEEN_TYPES, type RawPeriod, type SeenType, type Store } from '../store/store.js';
import { runSliced, SLICE, type Sliced } from './slices.js';

/** Names one sweep forgets at most. */
const FORGET_MAX = 10_000;
/** Longest time between two sweeps, ms. */
const SWEEP_EVERY_MAX_MS = 60_000;

type Seen = Record<SeenType, Map<string, number>>;
type Lists = Record<SeenType, string[]>;

export class KnownNames {
  private cache: { version: string; seen: Seen } | null = null;
  private lastSweepMs = -Infinity;
  /** The last sweep stopped at FORGET_MAX: the next flush sweeps again. */
  private more = false;
  private readonly errLog: RateLimitedLog;

  constructor(
    private readonly store: Store,
    /** 0: never forget. */
    private readonly forgetIdleAfterMs: number,
    private readonly self: SelfStats,
    private readonly log: Logger,
  ) {
    this.errLog = new RateLimitedLog(log, 5000);
  }

  /** Forget the copy: this process is no longer (or not yet again) the leader. */
  reset(): void {
    this.cache = null;
  }

  /** The known names per type, from the copy (re-read when known_version changed). */
  async names(nowMs: number): Promise<Record<KnownType, Iterable<string>>> {
    const version = await this.store.knownVersion();
    if (this.cache?.version !== version) {
      // Names stored without a last-seen time (before it was recorded, or a gauge new since the last
      // flush) count from now: the time is written at once, so a sweep never takes them for idle.
      const { seen, unrecorded } = await this.store.readSeen(nowMs);
      if (this.forgetIdleAfterMs > 0) await this.store.rememberSeen(unrecorded, nowMs);
      this.cache = { version, seen };
    }
    const seen = this.cache.seen;
    const keys = (m: Map<string, number>): Iterable<string> => ({ [Symbol.iterator]: () => m.keys() });
    return { counters: keys(seen.counters), timers: keys(seen.timers), sets: keys(seen.sets) };
  }

  /**
   * Adds the period's new names, and records the period's known names and
   * gauges as seen at nowMs where their stored time is stale. Without a copy
   * (reset() since names(): the lease was lost meanwhile) only the new names are written.
   */
  async remember(newKnown: Record<KnownType, readonly string[]>, raw: RawPeriod, nowMs: number): Promise<void> {
    const cache = this.cache;
    if (!cache) {
      await this.store.rememberSeen(newKnown, nowMs);
      return;
    }
    const F = this.forgetIdleAfterMs;
    const lists = (await runSliced(seenNow(cache.seen, raw, newKnown, F > 0 ? nowMs - F / 10 : null, nowMs))).value;
    try {
      await this.store.rememberSeen(lists, nowMs);
    } catch (err) {
      this.cache = null; // the copy already holds what Redis may not: read it again
      throw err;
    }
  }

  /** Forgets names idle past forgetIdleAfter (at most FORGET_MAX), if a sweep is due; a failure is logged and retried next flush. */
  async sweep(token: string, nowMs: number): Promise<void> {
    try {
      await this.sweepNow(token, nowMs);
    } catch (err) {
      this.cache = null; // the script may have run: read the names again
      this.errLog.warn(() => ({ msg: 'forgetting idle names failed; retried next flush', fields: { err: (err as Error).message } }));
    }
  }

  private async sweepNow(token: string, nowMs: number): Promise<void> {
    const F = this.forgetIdleAfterMs;
    const cache = this.cache;
    if (F <= 0 || !cache) return;
    const R = F / 10;
    if (!this.more && nowMs - this.lastSweepMs < Math.min(R, SWEEP_EVERY_MAX_MS)) return;
    this.lastSweepMs = nowMs;
    const cutoffMs = nowMs - F - R;
    const { lists, total } = (await runSliced(idleNames(cache.seen, cutoffMs))).value;
    this.more = total >= FORGET_MAX;
    if (total === 0) return;
    const res = await this.store.forgetIdle(token, cutoffMs, lists);
    if (res === null) {
      this.cache = null;
      return;
    }
    if (this.cache === cache && res.removed === total && cache.version === res.versionBefore) {
      for (const t of SEEN_TYPES) for (const name of lists[t]) cache.seen[t].delete(name);
      cache.version = res.versionAfter;
    } else {
      this.cache = null; // names changed meanwhile (console, another leader): read them again
    }
    this.self.namesForgotten += res.forgotten;
    if (res.forgotten > 0) this.log.info({ forgotten: res.forgotten, forgetIdleAfter: F, more: this.more }, 'forgot names idle longer than forgetIdleAfter');
  }
}

/** The names to record as seen now: new ones, and known ones (and gauges) of the period whose time is before staleBeforeMs. */
function* seenNow(seen: Seen, raw: RawPeriod, newKnown: Record<KnownType, readonly string[]>, staleBeforeMs: number | null, nowMs: number): Sliced<Lists> {
  const out: Lists = { counters: [...newKnown.counters], timers: [...newKnown.timers], sets: [...newKnown.sets], gauges: [] };
  for (const t of ['counters', 'timers', 'sets'] as const) for (const name of out[t]) seen[t].set(name, nowMs);
  if (staleBeforeMs === null) return out;
  let n = 0;
  const check = (t: SeenType, name: string): void => {
    const at = seen[t].get(name);
    if (at !== undefined ? at < staleBeforeMs : t === 'gauges') {
      out[t].push(name);
      seen[t].set(name, nowMs);
    }
  };
  for (const name of raw.counters.keys()) {
    check('counters', name);
    if (++n % SLICE === 0) yield;
  }
  for (const name of raw.timerCounts.keys()) {
    check('timers', name);
    if (++n % SLICE === 0) yield;
  }
  for (const name of raw.sets.keys()) {
    check('sets', name);
    if (++n % SLICE === 0) yield;
  }
  for (const name of raw.gaugesTouched.keys()) {
    check('gauges', name);
    if (++n % SLICE === 0) yield;
  }
  return out;
}

function* idleNames(seen: Seen, cutoffMs: number): Sliced<{ lists: Lists; total: number }> {
  const lists: Lists = { counters: [], timers: [], sets: [], gauges: [] };
  let total = 0;
  let n = 0;
  for (const t of SEEN_TYPES) {
    for (const [name, at] of seen[t]) {
      if (at < cutoffMs) {
        lists[t].push(name);
        if (++total >= FORGET_MAX) return { lists, total };
      }
      if (++n % SLICE === 0) yield;
    }
  }
  return { lists, total };
}
