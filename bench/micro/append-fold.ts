/**
 * The sizing that preceded layout 3 (bench/README.md, "Sizing the next
 * design"), kept because it times the parts' path in isolation: N distinct
 * counter names in parts of --part, packed (store/packed-parts.ts), appended
 * by a bare APPEND-with-dedupe script (mergeBatch-11 does that and merges
 * gauges), read back with one GET, folded (flush/fold-parts.ts), computed
 * (computePeriod), encoded (GraphiteSink) and XADDed to an outbox. Redis's
 * share is timed by Redis (INFO cpu, so run it on an otherwise idle Redis at
 * REDIS_URL).
 *
 * The whole of tallyd's merges and flush, on the same Redis:
 *   node --import tsx bench/micro/merge-profile.ts N     (the merges, mergeBatch-11)
 *   node --import tsx bench/micro/flush-profile.ts N     (a Flusher's flush)
 *
 *   node --import tsx bench/micro/append-fold.ts [names] [--part 3000] [--runs 3]
 *
 * What it leaves out of a flush: known names (statsd's zeros for idle
 * counters, forgetting idle names) and gauges (flush-profile.ts has both).
 */
import { Redis } from 'ioredis';
import { loadConfig } from '../../src/config/load.js';
import { Batch } from '../../src/aggregate/batch.js';
import { encodeMerge } from '../../src/aggregate/merge-args.js';
import { computePeriod } from '../../src/flush/compute-period.js';
import type { PeriodData } from '../../src/flush/period.js';
import { SelfStats } from '../../src/observability/self-stats.js';
import { PartsFolder } from '../../src/flush/fold-parts.js';
import { readParts } from '../../src/store/packed-parts.js';
import { GraphiteSink } from '../../src/sink/graphite/graphite-sink.js';
import { cpuOf, dropPrefix } from '../lib/redis-stats.js';

const args = process.argv.slice(2);
const names = Number(args.find((a) => /^\d+$/.test(a)) ?? 1_000_000);
const opt = (flag: string, dflt: number): number => {
  const at = args.indexOf(flag);
  return at >= 0 ? Number(args[at + 1]) : dflt;
};
const part = opt('--part', 3000);
const runs = opt('--runs', 3);
const url = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';

/** KEYS[1] the period's packed string, KEYS[2] the part's dedupe key; ARGV[1] the part, ARGV[2] the dedupe ttl ms. */
const APPEND = `
if redis.call('SET', KEYS[2], '1', 'NX', 'PX', ARGV[2]) then
  return redis.call('APPEND', KEYS[1], ARGV[1])
end
return -1`;

const us = (ms: number): string => ((ms * 1000) / names).toFixed(2);

async function main(): Promise<void> {
  const prefix = `appendfold:${process.pid}:`;
  const { config } = loadConfig({ file: null, env: {}, overrides: { graphiteHost: '127.0.0.1', flushInterval: 10_000, log: { level: 'warn' } } });
  const redis = new Redis(url);
  const sha = (await redis.script('LOAD', APPEND)) as string;
  const period = `${prefix}{0}:p`;
  const outbox = `${prefix}{0}:outbox`;
  try {
    for (let r = 0; r < runs; r++) {
      await redis.del(period, outbox);
      // The batch ticks: parts of distinct names, as the ingest thread's Batch holds them.
      const batches: Batch[] = [];
      for (let i = 0; i < names; i += part) {
        const b = new Batch();
        for (let j = i; j < Math.min(names, i + part); j++) b.counter(`scale.metric.${j}`, 1, 1);
        batches.push(b);
      }
      let t = performance.now();
      // Packed as the batcher's merges pack them (encodeMerge's part).
      const parts = batches.map((b) => encodeMerge(b)[0] as Buffer);
      const packMs = performance.now() - t;

      let c0 = cpuOf(await redis.info('cpu'));
      t = performance.now();
      let id = 0;
      const inFlight: Array<Promise<unknown>> = [];
      for (const p of parts) {
        inFlight.push(redis.evalsha(sha, 2, period, `${prefix}{0}:b:${r}:${id++}`, p, 60_000));
        if (inFlight.length >= 8) await inFlight.shift();
      }
      await Promise.all(inFlight);
      const appendMs = performance.now() - t;
      const appendCpu = (cpuOf(await redis.info('cpu')) - c0) * 1000;

      c0 = cpuOf(await redis.info('cpu'));
      t = performance.now();
      const blob = await redis.getBuffer(period);
      const readMs = performance.now() - t;
      const readCpu = (cpuOf(await redis.info('cpu')) - c0) * 1000;
      t = performance.now();
      const folder = new PartsFolder({ maxNames: 0, exemptPrefix: '', held: () => false });
      readParts(blob!, folder);
      const foldMs = performance.now() - t;
      const counters = folder.counters;
      if (counters.size !== names) throw new Error(`folded ${counters.size} names, want ${names}`);

      t = performance.now();
      const data: PeriodData = { counters, timers: new Map(), gauges: new Map(), sets: new Map() };
      const computed = computePeriod(data, config, Math.floor(Date.now() / 1000), 0);
      const computeMs = performance.now() - t;
      t = performance.now();
      const sink = new GraphiteSink(config, new SelfStats(), { start: () => {}, kick: () => {}, stop: () => Promise.resolve() });
      const chunks = await sink.encode(computed);
      const encodeMs = performance.now() - t;

      c0 = cpuOf(await redis.info('cpu'));
      t = performance.now();
      const pipe = redis.pipeline();
      for (const c of chunks) pipe.xadd(outbox, '*', 'd', c);
      pipe.unlink(period);
      await pipe.exec();
      const commitMs = performance.now() - t;
      const commitCpu = (cpuOf(await redis.info('cpu')) - c0) * 1000;

      const jsMs = packMs + foldMs + computeMs + encodeMs;
      const redisMs = appendCpu + readCpu + commitCpu;
      console.log(
        `run ${r + 1}: ${names} names, ${parts.length} parts of ${part}, ${(blob!.length / 1e6).toFixed(1)} MB packed, ${chunks.length} outbox chunks\n` +
          `  JS µs/name: pack ${us(packMs)}, fold ${us(foldMs)}, compute ${us(computeMs)}, encode ${us(encodeMs)} = ${us(jsMs)}\n` +
          `  Redis CPU µs/name: append ${us(appendCpu)} (wall ${appendMs.toFixed(0)} ms), read ${us(readCpu)} (wall ${readMs.toFixed(0)} ms), commit ${us(commitCpu)} (wall ${commitMs.toFixed(0)} ms) = ${us(redisMs)}\n` +
          `  total CPU ${us(jsMs + redisMs)} µs/name, rss ${(process.memoryUsage().rss / 1e6).toFixed(0)} MB`,
      );
    }
  } finally {
    await dropPrefix(redis, prefix);
    redis.disconnect();
  }
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
