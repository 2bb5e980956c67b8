/**
 * The scale part of `npm run bench` (`--scale`, and in the full and quick
 * runs): the curves over distinct names per flush, the RSS-flat check (fixed
 * names, doubling packet rate) and the ingest check during a 100k-name
 * flush, each printed as a table; bench/scale/scale.ts runs them.
 */
import path from 'node:path';
import { Corpus, parseMode } from '../lib/load.js';
import { runScale } from './scale.js';
import { median } from '../throughput/search.js';
import { writeScaleCorpus, type Dist, type ScaleResult, type ScaleSpec } from './scale-stats.js';

export interface ScaleSettings {
  names: number[];
  /** Full flush intervals of load per curve point (flushInterval is 10 s from 1M names). */
  flushes: number;
  /** metrics/s at 1,000 names, each step doubling the last; empty: no RSS-flat check. */
  rssSteps: number[];
  /** counters-32 metrics/s to send during 100k-name flushes (halved up to twice until it passes); null: no check. */
  concurrentRate: number | null;
}

export interface ScaleReport {
  settings: ScaleSettings;
  curve: ScaleResult[];
  rssFlat: ScaleResult | null;
  concurrent: ScaleResult[];
}

/** Names at which the flush interval goes from 2 s to 10 s: a 1M-name period needs time to be sent and flushed. */
const LONG_FLUSH_FROM = 1_000_000;
const CONCURRENT_NAMES = 100_000;
/**
 * Above this many names the curve introduces them RAMP_NEW_PER_FLUSH per flush before measuring, so the measured
 * periods are the steady state (every name known); COLD_NAMES, all new in one flush, is the cold start. tallyd
 * 256180b could not commit the cold one at all (a spread of the new names overflowed the flush thread's stack;
 * fixed in 6e267e5).
 */
const RAMP_FROM = 100_000;
const RAMP_NEW_PER_FLUSH = 250_000;
const COLD_NAMES = 1_000_000;

export function flushIntervalFor(names: number): number {
  return names >= LONG_FLUSH_FROM ? 10_000 : 2000;
}

/**
 * Load for N names: each name about twice per flush, at least 20,000 metrics/s; 1.25 times from 1M names (any
 * window longer than one loop over the names still holds every name), which spares the 2 cores 75,000 metrics/s.
 * At 2x (200,000 distinct names/s) tallyd 256180b's merge overflowed V8's stack (fixed in 6e267e5).
 */
export function scaleRate(names: number): number {
  const perFlush = names >= LONG_FLUSH_FROM ? 1.25 : 2;
  return Math.max(20_000, Math.round((perFlush * names * 1000) / flushIntervalFor(names)));
}

export async function runScaleSuite(s: ScaleSettings, work: string, log: (line: string) => void): Promise<ScaleReport> {
  const report: ScaleReport = { settings: s, curve: [], rssFlat: null, concurrent: [] };
  const corpora = new Map<number, { file: string; perLoop: number }>();
  const corpus = (names: number) => {
    let c = corpora.get(names);
    if (!c) {
      const file = path.join(work, `scale-${names}.bin`);
      c = { file, perLoop: writeScaleCorpus(names, file) };
      corpora.set(names, c);
    }
    return c;
  };
  const run = async (spec: ScaleSpec) => {
    const c = corpus(spec.names);
    log(`  [scale ${spec.label}] ${fmt(spec.names)} names, flushInterval ${spec.flushInterval} ms, ${spec.steps.map(fmt).join(' -> ')} metrics/s ...`);
    const r = await runScale(spec, c.file, c.perLoop);
    log(`    ${r.error ? `ERROR ${r.error.split('\n')[0]}` : 'done'}: flush ${d(r.steps[0]?.flushMs ?? null)} ms (processing ${d3(r.steps[0]?.processMs ?? null)}), Carbon complete ${d(r.steps[0]?.carbonCompleteMs ?? null)} ms, ` +
      `loss ${pct(r.loss)}, rss ${r.rssPeakMB} MB, redis ${r.redis.bytesPerName ?? '?'} B/name${r.concurrent ? `, concurrent ${fmt(r.concurrent.rate)}/s loss ${pct(r.concurrent.loss)}` : ''} (${Math.round(r.wallMs / 1000)} s)`);
    const stages = stageMedians(r);
    if (stages) log(`    flusher stages, median ms: ${stages}`);
    return r;
  };

  for (const names of s.names) {
    const ramp = names > RAMP_FROM ? RAMP_NEW_PER_FLUSH : 0;
    const label = ramp ? `${short(names)} (ramp ${short(ramp)} new/flush)` : short(names);
    report.curve.push(await run({
      label, names, flushInterval: flushIntervalFor(names), steps: [scaleRate(names)], flushes: s.flushes,
      sampleMs: names >= LONG_FLUSH_FROM ? 1000 : 250, rampNewPerFlush: ramp,
    }));
  }
  if (s.names.some((n) => n >= COLD_NAMES)) {
    // Without the ramp: every name new in one flush, as after a first deploy or a reset of known:*.
    report.curve.push(await run({ label: `${short(COLD_NAMES)} all new`, names: COLD_NAMES, flushInterval: flushIntervalFor(COLD_NAMES), steps: [scaleRate(COLD_NAMES)], flushes: 2 }));
  }
  if (report.curve.length) log(`\n${curveTable(report.curve)}`);
  if (s.rssSteps.length) {
    report.rssFlat = await run({ label: 'rss-flat', names: 1000, flushInterval: 2000, steps: s.rssSteps, flushes: 2 });
    log(`\n${rssTable(report.rssFlat)}`);
  }
  if (s.concurrentRate) {
    const file = path.join(work, 'concurrent-counters-32.bin');
    const c = new Corpus(parseMode('counters-32'), 1000, file);
    for (const rate of [s.concurrentRate, s.concurrentRate / 2, s.concurrentRate / 4].map(Math.round)) {
      const r = await run({
        label: `100k + counters-32 at ${short(rate)}/s`, names: CONCURRENT_NAMES, flushInterval: flushIntervalFor(CONCURRENT_NAMES),
        steps: [scaleRate(CONCURRENT_NAMES)], flushes: s.flushes, concurrent: { corpus: c, file, rate },
      });
      report.concurrent.push(r);
      if (r.concurrent?.pass || r.error) break;
    }
    log(`\n${concurrentTable(report.concurrent)}`);
  }
  return report;
}

/** The flusher's per-stage wall time (read, build, remember, encode, commit), medians over the measured periods. */
export function stageMedians(r: ScaleResult): string | null {
  const periods = r.periods.filter((p) => p.step >= 0 && Object.keys(p.stagesMs).length > 0);
  if (periods.length === 0) return null;
  const names = Object.keys(periods[0]!.stagesMs);
  return names.map((k) => `${k} ${median(periods.map((p) => p.stagesMs[k] ?? 0))}`).join(', ');
}

export function curveTable(rows: readonly ScaleResult[]): string {
  const head = ['names', 'flush int.', 'load/s', 'periods', 'lines/period', 'flush ms med/max', 'processing ms min/med/max', 'µs/name (min)', 'Carbon complete ms', 'loss %',
    'Redis B/name', 'cur+known B/name', 'peak B/name', 'used_memory Δ B/name', 'tallyd RSS MB', 'latency ms p50/p90/max', 'after boundary ms p50/max', 'CPU % tallyd/Redis/loadgen'];
  const cells = rows.map((r) => {
    const st = r.steps[0];
    const cur = (r.redis.perKey['cur:counters'] ?? 0) + (r.redis.perKey['known:counters'] ?? 0);
    const l = r.latency;
    return [
      r.label, `${r.flushInterval / 1000} s`, fmt(st?.achievedRate ?? 0), String(st?.periods ?? 0), fmt(r.linesPerPeriod ?? 0),
      d(st?.flushMs ?? null), d3(st?.processMs ?? null), st?.processMs ? ((st.processMs.min * 1000) / r.names).toFixed(2) : '-', d(st?.carbonCompleteMs ?? null), pct(r.loss),
      String(r.redis.bytesPerName ?? '-'), cur ? cur.toFixed(0) : '-', String(r.redis.peakBytesPerName), r.redis.usedMemoryDeltaPerName === null || r.redis.usedMemoryDeltaPerName < 0 ? 'n/a' : String(r.redis.usedMemoryDeltaPerName),
      String(r.rssPeakMB), !l ? '-' : l.lost === l.probes ? `all ${l.probes} lost` : `${l.p50Ms}/${l.p90Ms}/${l.maxMs}${l.lost ? ` (${l.lost} lost)` : ''}`,
      l && l.lost < l.probes ? `${l.afterBoundaryP50Ms}/${l.afterBoundaryMaxMs}` : '-',
      `${r.cpuPct.toFixed(0)}/${r.redisCpuPct.toFixed(0)}/${r.loadgenCpuPct.toFixed(0)}`,
    ];
  });
  const notes = rows.flatMap((r) => [
    ...(r.error ? [`${r.label}: ${r.error}`] : []),
    ...(r.duplicateLines ? [`${r.label}: Carbon got ${fmt(r.duplicateLines)} counter lines twice (re-sent after a lost lease; Graphite overwrites them)`] : []),
    ...Object.entries(r.warnings).map(([w, n]) => `${r.label}: tallyd warned ${n}x: ${w}`),
  ]);
  return [grid('scale: distinct counter names per flush (counters, 32 per datagram, each name 2x per flush, 1.25x from 1M)', head, cells), ...notes].join('\n');
}

export function rssTable(r: ScaleResult): string {
  const head = ['step', 'target/s', 'achieved/s', 'datagrams so far', 'metrics so far', 'RSS end MB', 'RSS peak MB', 'flush ms med/max', 'Carbon complete ms'];
  const cells = r.steps.map((st, i) => [
    String(i + 1), fmt(st.rate), fmt(st.achievedRate), fmt(st.datagramsSent), fmt(st.metricsSent), String(st.rssEndMB), String(st.rssPeakMB), d(st.flushMs), d(st.carbonCompleteMs),
  ]);
  const out = grid(`rss-flat: ${fmt(r.names)} names, the packet rate doubling, one tallyd (loss ${pct(r.loss)})`, head, cells);
  return r.error ? `${out}\nerror: ${r.error}` : out;
}

export function concurrentTable(rows: readonly ScaleResult[]): string {
  const head = ['100k-name load', 'counters-32 target/s', 'achieved/s', 'loss %', 'verdict', 'flush ms med/max', 'CPU % tallyd/Redis', 'loadgens CPU %'];
  const cells = rows.map((r) => {
    const c = r.concurrent;
    return [
      fmt(r.steps[0]?.achievedRate ?? 0) + '/s', fmt(c?.rate ?? 0), fmt(c?.achievedRate ?? 0), c ? pct(c.loss) : '-', r.error ? 'error' : c?.pass ? 'pass' : 'FAIL',
      d(r.steps[0]?.flushMs ?? null), `${r.cpuPct.toFixed(0)}/${r.redisCpuPct.toFixed(0)}`, `${r.loadgenCpuPct.toFixed(0)}+${c?.loadgenCpuPct.toFixed(0) ?? '-'}`,
    ];
  });
  return grid('ingest during 100k-name flushes: counters-32 (bench.c.*, 1,000 names) sent at the same time, checked in Carbon', head, cells);
}

function grid(title: string, head: readonly string[], cells: readonly string[][]): string {
  const widths = head.map((h, i) => Math.max(h.length, ...cells.map((c) => (c[i] ?? '').length)));
  const line = (c: readonly string[]) => c.map((x, i) => x.padStart(widths[i] ?? 0)).join('  ');
  return [`== ${title}`, line(head), ...cells.map(line)].join('\n');
}

function d(x: Dist | null): string {
  return x ? `${x.median}/${x.max}` : '-';
}

function d3(x: Dist | null): string {
  return x ? `${x.min}/${x.median}/${x.max}` : '-';
}

function pct(x: number): string {
  return (x * 100).toFixed(3);
}

function fmt(n: number): string {
  return Math.round(n).toLocaleString('en-US');
}

function short(n: number): string {
  return n >= 1e6 ? `${n / 1e6}M` : n >= 1e3 ? `${n / 1e3}k` : String(n);
}
