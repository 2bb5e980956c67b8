/**
 * Pure Graphite plaintext encoding of one computed flush period, named
 * exactly like Etsy statsd 0.9's backends/graphite.js (graphite_init's
 * namespaces, flush_stats' format() and order, post_stats' graphiteStats
 * lines). The values come computed (flush/compute-period.ts): this only names
 * and formats. Values are printed with String(value), as statsd's string
 * concatenation does. No I/O; the only impurity is the injectable clock that
 * times the encoding for statsd's graphiteStats.calculationtime.
 */
import type { Config } from '../../config/types.js';
import type { ComputedPeriod } from '../../flush/computed-period.js';
import { runSync, SLICE, type Sliced } from '../../flush/slices.js';

export type NamerConfig = Pick<Config, 'graphite' | 'prefixStats' | 'keyNameSanitize' | 'flush_counts'>;

export type EncodeConfig = NamerConfig;

/** statsd's graphite backend status (post_stats' graphiteStats lines). */
export interface GraphiteStatus {
  readonly last_exception: number;
  readonly last_flush: number;
  readonly flush_time: number;
  readonly flush_length: number;
}

export type Namespace = readonly string[];

/** A metric key split like statsd's format(): the name, and its tags as ';k=v;...' ('' when none). */
export interface SplitKey {
  readonly name: string;
  readonly tags: string;
}

export interface EncodedPeriod {
  /** `name value ts` lines, without '\n'. */
  readonly lines: string[];
  /** statsd's numStats: counters + timers + gauges + sets. */
  readonly numStats: number;
}

/** post_stats' lines, in statsd's order. */
const GRAPHITE_STATS = ['last_exception', 'last_flush', 'flush_time', 'flush_length'] as const;

export class GraphiteNamer {
  readonly legacy: boolean;
  readonly globalNamespace: Namespace;
  readonly counterNamespace: Namespace;
  readonly timerNamespace: Namespace;
  readonly gaugesNamespace: Namespace;
  readonly setsNamespace: Namespace;
  /** '' or '.' + the configured suffix. */
  readonly globalSuffix: string;
  readonly prefixStats: string;
  readonly flushCounts: boolean;
  /** statsd's sk() sanitizes names only when keyNameSanitize is off (ingest did not). */
  private readonly sanitize: boolean;

  constructor(cfg: NamerConfig) {
    const g = cfg.graphite;
    this.legacy = g.legacyNamespace;
    this.prefixStats = cfg.prefixStats;
    this.flushCounts = cfg.flush_counts;
    this.sanitize = !cfg.keyNameSanitize;
    this.globalSuffix = g.globalSuffix === '' ? '' : '.' + g.globalSuffix;
    if (this.legacy) {
      this.globalNamespace = ['stats'];
      this.counterNamespace = ['stats'];
      this.timerNamespace = ['stats', 'timers'];
      this.gaugesNamespace = ['stats', 'gauges'];
      this.setsNamespace = ['stats', 'sets'];
    } else {
      const root = g.globalPrefix === '' ? [] : [g.globalPrefix];
      const under = (prefix: string): Namespace => (prefix === '' ? root : [...root, prefix]);
      this.globalNamespace = root;
      this.counterNamespace = under(g.prefixCounter);
      this.timerNamespace = under(g.prefixTimer);
      this.gaugesNamespace = under(g.prefixGauge);
      this.setsNamespace = under(g.prefixSet);
    }
  }

  /** statsd's sk(). */
  sk(name: string): string {
    if (!this.sanitize) return name;
    return name
      .replace(/\s+/g, '_')
      .replace(/\//g, '-')
      .replace(/[^a-zA-Z_\-0-9.;=]/g, '');
  }

  /** The first ';'-part is the name (through sk), the rest are tags, untouched. */
  split(key: string): SplitKey {
    const semi = key.indexOf(';');
    if (semi === -1) return { name: this.sk(key), tags: '' };
    return { name: this.sk(key.slice(0, semi)), tags: key.slice(semi) };
  }

  /** `namespace.concat(name).join('.')`: the part of a name shared by a timer's sub-metrics. */
  stem(namespace: Namespace, key: SplitKey): string {
    return namespace.length === 0 ? key.name : namespace.join('.') + '.' + key.name;
  }

  /** Completes a stem: '.'-joined parts, then the suffix, then the tags (after the suffix, like statsd). */
  finish(stem: string, key: SplitKey, parts: readonly string[]): string {
    let name = stem;
    for (const p of parts) name += '.' + p;
    return name + this.globalSuffix + key.tags;
  }

  /** statsd's format(namespace, key, ...parts). */
  format(namespace: Namespace, key: string, ...parts: string[]): string {
    const split = this.split(key);
    return this.finish(this.stem(namespace, split), split, parts);
  }

  counterRate(key: string): string {
    return this.legacy ? this.format(this.counterNamespace, key) : this.format(this.counterNamespace, key, 'rate');
  }

  /** The count line's name, or null when flush_counts is off. */
  counterCount(key: string): string | null {
    if (!this.flushCounts) return null;
    return this.legacy ? this.format(['stats_counts'], key) : this.format(this.counterNamespace, key, 'count');
  }

  gauge(key: string): string {
    return this.format(this.gaugesNamespace, key);
  }

  set(key: string): string {
    return this.format(this.setsNamespace, key, 'count');
  }

  /** Legacy: `<prefixStats>.numStats` (no 'stats.' in front: statsd's quirk). */
  numStats(): string {
    return this.legacy
      ? this.prefixStats + '.numStats' + this.globalSuffix
      : this.format(this.globalNamespace, this.prefixStats, 'numStats');
  }

  calculationTime(): string {
    return this.legacy
      ? 'stats.' + this.prefixStats + '.graphiteStats.calculationtime' + this.globalSuffix
      : this.format(this.globalNamespace, this.prefixStats, 'graphiteStats', 'calculationtime');
  }

  /** A key of statsd's statsd_metrics (processing_time). */
  statsdMetric(key: string): string {
    return this.legacy
      ? 'stats.' + this.prefixStats + '.' + key + this.globalSuffix
      : this.format(this.globalNamespace, this.prefixStats, key);
  }

  /** post_stats' names: no format(), so no sk() and no tag handling. */
  graphiteStat(key: string): string {
    return [...this.globalNamespace, this.prefixStats].join('.') + '.graphiteStats.' + key + this.globalSuffix;
  }
}

/**
 * One period's Graphite lines in statsd's order: counters (rate, then count),
 * timers, gauges, sets, numStats, calculationtime, processing_time, then the
 * four graphiteStats lines. Every line carries the period's timestamp
 * (statsd stamps post_stats' lines with the send time instead; the period
 * boundary is what a replayed period must reproduce).
 */
export function encodePeriod(
  period: ComputedPeriod,
  graphite: GraphiteStatus,
  cfg: EncodeConfig,
  now: () => number = Date.now,
): EncodedPeriod {
  const lines: string[] = [];
  const numStats = runSync(encodePeriodSliced(period, graphite, cfg, (line) => lines.push(line), now));
  return { lines, numStats };
}

/**
 * encodePeriod as a generator that hands each line to `out` and yields every
 * SLICE names (see flush/slices.ts); returns numStats. calculationtime
 * counts only the time spent encoding, not the turns given away.
 */
export function* encodePeriodSliced(
  period: ComputedPeriod,
  graphite: GraphiteStatus,
  cfg: EncodeConfig,
  out: (line: string) => void,
  now: () => number = Date.now,
): Sliced<number> {
  let busy = 0;
  let resumed = now();
  const namer = new GraphiteNamer(cfg);
  const tail = ' ' + String(period.timestampS);
  const add = (name: string, value: number): void => {
    out(name + ' ' + String(value) + tail);
  };
  let n = 0;

  const c = period.counters;
  for (let i = 0; i < c.names.length; i++) {
    const key = c.names[i]!;
    add(namer.counterRate(key), c.rates[i]!);
    const countName = namer.counterCount(key);
    if (countName !== null) add(countName, c.values[i]!);
    if (++n % SLICE === 0) {
      busy += now() - resumed;
      yield;
      resumed = now();
    }
  }

  const t = period.timers;
  for (let i = 0; i < t.names.length; i++) {
    const key = t.names[i]!;
    const split = namer.split(key);
    const stem = namer.stem(namer.timerNamespace, split);
    const end = t.statStart[i + 1]!;
    for (let j = t.statStart[i]!; j < end; j++) {
      add(namer.finish(stem, split, t.statKeys[j]!.path), t.statValues[j]!);
    }
    if (++n % SLICE === 0) {
      busy += now() - resumed;
      yield;
      resumed = now();
    }
  }

  const g = period.gauges;
  for (let i = 0; i < g.names.length; i++) {
    add(namer.gauge(g.names[i]!), g.values[i]!);
    if (++n % SLICE === 0) {
      busy += now() - resumed;
      yield;
      resumed = now();
    }
  }

  const s = period.sets;
  for (let i = 0; i < s.names.length; i++) {
    add(namer.set(s.names[i]!), s.counts[i]!);
    if (++n % SLICE === 0) {
      busy += now() - resumed;
      yield;
      resumed = now();
    }
  }

  if (period.selfMetrics === false) return period.numStats; // shard 0's leader emits the fleet's (flush/fleet-stats.ts)
  add(namer.numStats(), period.numStats);
  add(namer.calculationTime(), busy + now() - resumed);
  add(namer.statsdMetric('processing_time'), period.processingTimeMs);
  for (const key of GRAPHITE_STATS) add(namer.graphiteStat(key), graphite[key]);
  return period.numStats;
}
