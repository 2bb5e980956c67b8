/**
 * The scale curves' records and the arithmetic over them: per-period and
 * per-step statistics, the probe latencies, and the scale corpus
 * (`scale.<i>:1|c`, 32 per datagram).
 */
import { writeFileSync } from 'node:fs';
import type { Corpus } from '../lib/load.js';
import { median } from '../throughput/search.js';

export const PER_DATAGRAM = 32;

export interface ScaleSpec {
  label: string;
  names: number;
  flushInterval: number;
  /** metrics/s of each load step; each lasts `flushes` flush intervals. */
  steps: number[];
  flushes: number;
  /** Another load at the same time (counters-32 over bench.c.*), checked for loss. */
  concurrent?: { corpus: Corpus; file: string; rate: number };
  /** ms between samples of Redis memory. */
  sampleMs?: number;
  /**
   * Before the measured flushes, introduce the names this many at a time,
   * one batch per flush (names 0..k*n-1 in flush k): tallyd cannot commit a
   * period with much more than 100,000 names it has never seen (see README).
   */
  rampNewPerFlush?: number;
}


export interface Dist {
  min: number;
  median: number;
  max: number;
}

export interface PeriodStat {
  ts: number;
  /** The load step during which it ended; -1 after the load (only the spill-over and re-emitted zeros: left out of the step's figures). */
  step: number;
  /** Boundary to `period committed`, ms (null: not logged). Includes waiting behind earlier periods. */
  flushMs: number | null;
  /** The period's own processing: commit minus the later of its boundary and the previous commit (periods go one at a time). */
  processMs: number | null;
  /** Boundary to the first of its lines in Carbon, and to the moment every stats_counts.scale.<i> of it was in (or, with names lost, all it committed). */
  carbonFirstMs: number | null;
  carbonCompleteMs: number | null;
  /** Lines of the period as committed (log), and as received (re-sent lines included). */
  lines: number | null;
  carbonLines: number;
  /** The flusher's own timing of read, build, remember, encode and commit, ms (empty: not logged). */
  stagesMs: Record<string, number>;
}

export interface StepStat {
  rate: number;
  achievedRate: number;
  /** Cumulative, since tallyd started. */
  datagramsSent: number;
  metricsSent: number;
  rssEndMB: number;
  rssPeakMB: number;
  flushMs: Dist | null;
  processMs: Dist | null;
  carbonCompleteMs: Dist | null;
  periods: number;
}

export interface ScaleResult {
  label: string;
  names: number;
  flushInterval: number;
  flushes: number;
  steps: StepStat[];
  periods: PeriodStat[];
  /** Of the scale load itself: 1 - (sum of stats_counts.scale.* over all periods, a re-sent line overwriting) / metrics sent. */
  loss: number;
  /** stats_counts.scale.* lines Carbon got twice for the same period (at-least-once re-sends; Graphite overwrites them). */
  duplicateLines: number;
  linesPerPeriod: number | null;
  redis: {
    /** Sum of MEMORY USAGE of tallyd's keys late in the last loaded period (cur + known + whatever waits), / names. */
    bytesPerName: number | null;
    /** The same split by key (`cur:counters`, `known:counters`, ...), bytes per name. */
    perKey: Record<string, number>;
    /** Highest sampled sum over tallyd's keys (mid-flush a rotated copy and the outbox add to it), / names. */
    peakBytesPerName: number;
    /** INFO used_memory at that late sample minus before tallyd started (other clients of the Redis count too), / names. */
    usedMemoryDeltaPerName: number | null;
  };
  rssPeakMB: number;
  latency: { probes: number; lost: number; p50Ms: number; p90Ms: number; maxMs: number; afterBoundaryP50Ms: number; afterBoundaryMaxMs: number } | null;
  cpuPct: number;
  redisCpuPct: number;
  loadgenCpuPct: number;
  concurrent: { rate: number; achievedRate: number; loss: number; pass: boolean; loadgenCpuPct: number } | null;
  /** Names sent before the measured flushes, new ones per flush (0: none, all names new in the first measured flush). */
  rampNewPerFlush: number;
  /** tallyd's warnings during the run, with counts. */
  warnings: Record<string, number>;
  wallMs: number;
  error?: string;
}

/** The stats_counts.scale.<i> lines by period as Graphite keeps them: a line re-sent for the same period overwrites. */
export class ScaleLines {
  private readonly byTs = new Map<number, { values: Float64Array; seen: Uint8Array; distinct: number; completeAt: number }>();
  duplicates = 0;

  constructor(private readonly names: number) {}

  add(i: number, value: number, ts: number, now: number): void {
    if (!(i >= 0 && i < this.names)) return;
    let p = this.byTs.get(ts);
    if (!p) {
      p = { values: new Float64Array(this.names), seen: new Uint8Array(this.names), distinct: 0, completeAt: 0 };
      this.byTs.set(ts, p);
    }
    if (p.seen[i]) this.duplicates++;
    else {
      p.seen[i] = 1;
      p.distinct++;
      p.completeAt = now;
    }
    p.values[i] = value;
  }

  /** Date.now() when the period's last missing name arrived, null while some are missing. */
  completeAt(ts: number): number | null {
    const p = this.byTs.get(ts);
    return p && p.distinct >= this.names ? p.completeAt : null;
  }

  sum(): number {
    let total = 0;
    for (const p of this.byTs.values()) for (const v of p.values) total += v;
    return total;
  }
}

/** `scale.<i>:1|c` for i < names, 32 per datagram (NUL-ended, for loadgen.c); returns datagrams per loop. */
export function writeScaleCorpus(names: number, file: string): number {
  const parts: string[] = [];
  for (let i = 0; i < names; i += PER_DATAGRAM) {
    const lines: string[] = [];
    for (let j = i; j < Math.min(names, i + PER_DATAGRAM); j++) lines.push(`scale.${j}:1|c`);
    parts.push(lines.join('\n') + '\0');
  }
  writeFileSync(file, parts.join(''));
  return parts.length;
}

/** Metrics in the first `datagrams` datagrams of the looped scale corpus (only a loop's last datagram is short). */
export function metricsOf(datagrams: number, perLoop: number, names: number): number {
  return Math.floor(datagrams / perLoop) * names + (datagrams % perLoop) * PER_DATAGRAM;
}

export function latency(sentAt: readonly number[], arrival: ReadonlyMap<number, { now: number; ts: number }>): ScaleResult['latency'] {
  const total: number[] = [];
  const after: number[] = [];
  for (const [k, s] of sentAt.entries()) {
    const a = arrival.get(k);
    if (!a) continue;
    total.push(a.now - s);
    after.push(a.now - a.ts * 1000);
  }
  if (total.length === 0) return sentAt.length ? { probes: sentAt.length, lost: sentAt.length, p50Ms: 0, p90Ms: 0, maxMs: 0, afterBoundaryP50Ms: 0, afterBoundaryMaxMs: 0 } : null;
  const q = (xs: number[], p: number) => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor(p * xs.length))] ?? 0;
  return {
    probes: sentAt.length,
    lost: sentAt.length - total.length,
    p50Ms: q(total, 0.5),
    p90Ms: q(total, 0.9),
    maxMs: Math.max(...total),
    afterBoundaryP50Ms: q(after, 0.5),
    afterBoundaryMaxMs: Math.max(...after),
  };
}

export function dist(xs: number[]): Dist | null {
  return xs.length ? { min: Math.min(...xs), median: Math.round(median(xs)), max: Math.max(...xs) } : null;
}

export function emptyResult(spec: ScaleSpec): ScaleResult {
  return {
    label: spec.label,
    names: spec.names,
    flushInterval: spec.flushInterval,
    flushes: spec.flushes,
    steps: [],
    periods: [],
    loss: 1,
    duplicateLines: 0,
    linesPerPeriod: null,
    redis: { bytesPerName: null, perKey: {}, peakBytesPerName: 0, usedMemoryDeltaPerName: null },
    rssPeakMB: 0,
    latency: null,
    cpuPct: 0,
    redisCpuPct: 0,
    loadgenCpuPct: 0,
    concurrent: null,
    rampNewPerFlush: spec.rampNewPerFlush ?? 0,
    warnings: {},
    wallMs: 0,
  };
}

export function mb(bytes: number): number {
  return round1(bytes / 2 ** 20);
}

export function round1(x: number): number {
  return Math.round(x * 10) / 10;
}

export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, Math.max(0, ms)));
}
