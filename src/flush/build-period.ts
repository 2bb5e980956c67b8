/**
 * Turns a rotated period as stored in Redis (RawPeriod) into PeriodData for
 * compute/encode, adding statsd's re-emitted idle metrics: known counters
 * (0), timers (empty) and sets (0) unless the matching delete* option is on,
 * and statsd's own three counters, which it always emits. Pure.
 */
import type { Config } from '../config/types.js';
import { unpackSamples } from '../aggregate/merge-args.js';
import { FIELD_SEP, type KnownType } from '../store/keys.js';
import type { RawPeriod } from '../store/store.js';
import type { PeriodData, TimerSamples } from './period.js';

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
  known: Record<KnownType, readonly string[]>,
  cfg: BuildConfig,
  extraGauges: ReadonlyArray<[string, number]> = [],
): BuiltPeriod {
  const counters = new Map<string, number>();
  for (const name of internalCounterNames(cfg.prefixStats)) counters.set(name, 0);
  for (const name of known.counters) if (keepsIdleCounter(cfg, name)) counters.set(name, 0);
  for (const [name, v] of Object.entries(raw.counters)) counters.set(name, Number(v));

  const timers = new Map<string, TimerSamples>();
  if (!cfg.deleteTimers) for (const name of known.timers) timers.set(name, { values: [], count: 0 });
  for (const [name, c] of Object.entries(raw.timerCounts)) timers.set(name, { values: [], count: Number(c) });
  for (const [field, packed] of raw.timers) {
    const name = field.slice(0, field.indexOf(FIELD_SEP));
    let t = timers.get(name);
    if (t === undefined) {
      t = { values: [], count: 0 };
      timers.set(name, t);
    }
    unpackSamples(packed, t.values);
  }

  const sets = new Map<string, number>();
  if (!cfg.deleteSets) for (const name of known.sets) sets.set(name, 0);
  for (const field of Object.keys(raw.sets)) {
    const name = field.slice(0, field.indexOf(FIELD_SEP));
    sets.set(name, (sets.get(name) ?? 0) + 1);
  }

  const gauges = new Map<string, number>();
  for (const [name, v] of Object.entries(raw.gauges)) gauges.set(name, Number(v));
  for (const [name, v] of extraGauges) gauges.set(name, v);

  return {
    data: { counters, timers, gauges, sets },
    newKnown: {
      counters: newNames(Object.keys(raw.counters), known.counters, cfg.prefixStats).filter((n) => keepsIdleCounter(cfg, n)),
      timers: cfg.deleteTimers ? [] : newNames(Object.keys(raw.timerCounts), known.timers, cfg.prefixStats),
      sets: cfg.deleteSets ? [] : newNames(setNames(raw.sets), known.sets, cfg.prefixStats),
    },
  };
}

function newNames(names: Iterable<string>, known: readonly string[], prefixStats: string): string[] {
  const have = new Set(known);
  for (const n of internalCounterNames(prefixStats)) have.add(n);
  return [...names].filter((n) => !have.has(n));
}

function setNames(sets: Record<string, string>): Set<string> {
  const names = new Set<string>();
  for (const field of Object.keys(sets)) names.add(field.slice(0, field.indexOf(FIELD_SEP)));
  return names;
}
