/**
 * Busy names in layout 3: each of N counter names in every batch tick of every
 * process (50 ticks a 10 s period at the default batchInterval), merged with
 * mergeBatch-11 into one open period on the Redis at REDIS_URL (run it on an
 * otherwise idle Redis), once as appended and once with the leader
 * compacting as the daemon does (CompactSchedule, looked at every fifth of
 * the period). For each: the parts' bytes at their peak and a name, Redis's
 * memory for them, the time of the merges, of the compactions (JS and
 * Redis), and of the flush's read and fold (Store.readPeriod) of the closed
 * period; the sums are checked equal.
 *
 *   node --import tsx bench/micro/busy-parts.ts [names] [--ticks 50] [--procs 2] [--runs 3]
 */
import { Batch } from '../../src/aggregate/batch.js';
import { encodeMergeParts } from '../../src/aggregate/merge-args.js';
import { CompactSchedule } from '../../src/flush/compact-parts.js';
import { createLogger } from '../../src/observability/logger.js';
import { Store, UNBOUNDED } from '../../src/store/store.js';
import { median } from '../throughput/search.js';
import { cpuOf, dropPrefix } from '../lib/redis-stats.js';

const args = process.argv.slice(2);
const names = Number(args.find((a) => /^\d+$/.test(a)) ?? 100_000);
const opt = (flag: string, dflt: number): number => {
  const at = args.indexOf(flag);
  return at >= 0 ? Number(args[at + 1]) : dflt;
};
const ticks = opt('--ticks', 50);
const procs = opt('--procs', 2);
const runs = opt('--runs', 3);
const url = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';
const I = 10_000;
/** The daemon's look at the open periods: a fifth of the period, at most 1 s (Flusher.scheduleCompact). */
const LOOK_EVERY_TICKS = Math.max(1, Math.round(ticks / 10));

interface Row {
  peakBytes: number;
  usedMemory: number;
  mergeMs: number;
  compactMs: number;
  compactions: number;
  /** Redis's CPU over the merges and compactions. */
  redisMs: number;
  readMs: number;
  sum: number;
}

function usedMemory(info: string): number {
  return Number(/used_memory:(\d+)/.exec(info)?.[1] ?? 0);
}

async function runOnce(compact: boolean, run: number): Promise<Row> {
  const prefix = `busyparts:${process.pid}:${run}:${compact ? 'c' : 'a'}:`;
  const store = await Store.open({ url, keyPrefix: prefix, shards: 1 }, createLogger('silent'));
  const redis = store.redis;
  try {
    const P = Math.ceil(Date.now() / I) * I + 100 * I;
    const schedule = new CompactSchedule();
    const mem0 = usedMemory(await redis.info('memory'));
    let peakBytes = 0;
    let mergeMs = 0;
    let compactMs = 0;
    let compactions = 0;
    const cpu0 = cpuOf(await redis.info('cpu'));
    for (let t = 0; t < ticks; t++) {
      // Each process's batch of the tick: every name once (the batch sums a name's samples of the tick).
      const parts = Array.from({ length: procs }, () => {
        const b = new Batch();
        for (let i = 0; i < names; i++) b.counter(`busy.app.requests.${i}`, 1, 1);
        return encodeMergeParts(b, 1, () => 0, 'statsd.')[0]!.args;
      });
      let t0 = performance.now();
      await Promise.all(parts.map((a, p) => store.merge(`b:${t}:${p}`, P, `m${p}`, P, a, false, UNBOUNDED)));
      mergeMs += performance.now() - t0;
      peakBytes = Math.max(peakBytes, await redis.strlen(store.keys.period(P, 'parts')));
      if (compact && t % LOOK_EVERY_TICKS === LOOK_EVERY_TICKS - 1) {
        const bytes = await redis.strlen(store.keys.period(P, 'parts'));
        if (schedule.due(P, bytes)) {
          t0 = performance.now();
          const r = await store.compactPeriod(P);
          compactMs += performance.now() - t0;
          schedule.done(P, r);
          if (r.status === 'compacted') compactions++;
        }
      }
    }
    const redisMs = (cpuOf(await redis.info('cpu')) - cpu0) * 1000;
    const usedMemoryBytes = usedMemory(await redis.info('memory')) - mem0;
    await store.tryAcquireLease('bench', 60_000);
    for (let p = 0; p < procs; p++) await store.leave(`m${p}`);
    const closed = await store.closePeriod('bench', P, 60_000, 0, P + I);
    if (closed.status !== 'closed') throw new Error(`close: ${closed.status}`);
    const t0 = performance.now();
    const raw = await store.readPeriod(P, UNBOUNDED);
    const readMs = performance.now() - t0;
    let sum = 0;
    for (const v of raw.counters.values()) sum += v;
    return { peakBytes, usedMemory: usedMemoryBytes, mergeMs, compactMs, compactions, redisMs, readMs, sum };
  } finally {
    await dropPrefix(redis, prefix);
    await store.quit();
  }
}

async function main(): Promise<void> {
  console.log(`busy names: ${names} counters in each of ${ticks} batch ticks x ${procs} processes (${names * ticks * procs} entries a period), median of ${runs} runs`);
  const rows: Record<'appended' | 'compacted', Row[]> = { appended: [], compacted: [] };
  for (let r = 0; r < runs; r++) {
    rows.appended.push(await runOnce(false, r));
    rows.compacted.push(await runOnce(true, r));
  }
  const want = names * ticks * procs;
  console.log('| parts | peak bytes | bytes a name | Redis memory | merges | compactions | compaction time | Redis CPU | read + fold at flush |');
  console.log('|---|---:|---:|---:|---:|---:|---:|---:|---:|');
  for (const mode of ['appended', 'compacted'] as const) {
    const m = (f: (r: Row) => number): number => median(rows[mode].map(f));
    for (const r of rows[mode]) if (r.sum !== want) throw new Error(`${mode}: the counters sum to ${r.sum}, not ${want}`);
    console.log(
      `| ${mode} | ${(m((r) => r.peakBytes) / 1e6).toFixed(1)} MB | ${(m((r) => r.peakBytes) / names).toFixed(0)} | ${(m((r) => r.usedMemory) / 1e6).toFixed(1)} MB `
        + `| ${m((r) => r.mergeMs).toFixed(0)} ms | ${m((r) => r.compactions)} | ${m((r) => r.compactMs).toFixed(0)} ms | ${m((r) => r.redisMs).toFixed(0)} ms | ${m((r) => r.readMs).toFixed(0)} ms |`,
    );
  }
  console.log(`every run's counters summed to ${want} in both`);
}

await main();
