/**
 * Turns a closed period as stored in Redis (RawPeriod) into PeriodData for
 * compute/encode, adding statsd's re-emitted idle metrics: known counters
 * (0), timers (empty) and sets (0) unless the matching delete* option is on,
 * and statsd's own three counters, which it always emits. Pure; written as a
 * generator that yields every SLICE names (see slices.ts).
 */
import { redisNumber } from '../store/redis-number.js';
import type { Config } from '../config/types.js';
import type { KnownType } from '../store/keys.js';
import type { RawPeriod } from '../store/store.js';
import type { PeriodData, TimerSamples } from './period.js';
import { runSync, SLICE, type Sliced } from './slices.js';

export type BuildConfig = Pick<Config, 'deleteCounters' | 'deleteTimers' | 'deleteSets' | 'prefixStats'>;

export interface BuiltPeriod {
  data: PeriodData;
  /** Names seen this period that the known:* hashes don't hold yet. */
  newKnown: Record<KnownType, string[]>;
}

/**
 * statsd re-emits an idle counter as 0 unless deleteCounters; even then it
 * keeps any counter whose name merely contains one of its own three counter
 * names (a substring test, whatever prefixStats is): replicated.
 */
export function keepsIdleCounter(cfg: BuildConfig, name: string): boolean {
  return (
    !cfg.deleteCounters ||
    name.includes('packets_received') ||
    name.includes('metrics_received') ||
    name.includes('bad_lines_seen')
  );
}

export function internalCounterNames(prefixStats: string): string[] {
  return [`${prefixStats}.bad_lines_seen`, `${prefixStats}.packets_received`, `${prefixStats}.metrics_received`];
}

export function buildPeriod(
  raw: RawPeriod,
  known: Record<KnownType, Iterable<string>>,
  cfg: BuildConfig,
  extraGauges: ReadonlyArray<[string, number]> = [],
): BuiltPeriod {
  return runSync(buildPeriodSliced(raw, known, cfg, extraGauges));
}

/**
 * A name is new when the map did not hold it before this period's value was
 * set: known names (and statsd's own three) are put in first. With a
 * delete* option on, idle names are not re-emitted, so none are remembered.
 * seedInternal false (a shard other than 0 of several): statsd's own three
 * are not put in, and never become known names; shard 0 emits them for the
 * fleet (fleet-stats.ts).
 */
export function* buildPeriodSliced(
  raw: RawPeriod,
  known: Record<KnownType, Iterable<string>>,
  cfg: BuildConfig,
  extraGauges: ReadonlyArray<[string, number]> = [],
  seedInternal = true,
): Sliced<BuiltPeriod> {
  const internal = new Set(internalCounterNames(cfg.prefixStats));
  const newKnown: Record<KnownType, string[]> = { counters: [], timers: [], sets: [] };
  let n = 0;

  const counters = new Map<string, number>();
  if (seedInternal) for (const name of internal) counters.set(name, 0);
  for (const name of known.counters) {
    if (keepsIdleCounter(cfg, name)) counters.set(name, 0);
    if (++n % SLICE === 0) yield;
  }
  for (const [name, v] of raw.counters) {
    if (!counters.has(name) && keepsIdleCounter(cfg, name) && !internal.has(name)) newKnown.counters.push(name);
    counters.set(name, v);
    if (++n % SLICE === 0) yield;
  }

  const timers = new Map<string, TimerSamples>();
  if (!cfg.deleteTimers) {
    for (const name of known.timers) {
      timers.set(name, { values: [], count: 0 });
      if (++n % SLICE === 0) yield;
    }
  }
  for (const [name, c] of raw.timerCounts) {
    if (!cfg.deleteTimers && !timers.has(name) && !internal.has(name)) newKnown.timers.push(name);
    timers.set(name, { values: raw.timers.get(name) ?? [], count: c });
    if (++n % SLICE === 0) yield;
  }

  const sets = new Map<string, number>();
  if (!cfg.deleteSets) {
    for (const name of known.sets) {
      sets.set(name, 0);
      if (++n % SLICE === 0) yield;
    }
  }
  for (const [name, members] of raw.sets) {
    if (!sets.has(name) && !cfg.deleteSets && !internal.has(name)) newKnown.sets.push(name);
    sets.set(name, members.size);
    if (++n % SLICE === 0) yield;
  }

  const gauges = new Map<string, number>();
  for (const [name, v] of raw.gauges) {
    gauges.set(name, redisNumber(v));
    if (++n % SLICE === 0) yield;
  }
  for (const [name, v] of extraGauges) gauges.set(name, v);

  return { data: { counters, timers, gauges, sets }, newKnown };
}
