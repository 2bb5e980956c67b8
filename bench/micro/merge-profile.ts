/**
 * Redis's cost of merging: N distinct counter names merged into one period
 * in parts of --part names (mergeBatch-11, one call a part: the packed part
 * appended, so no command a name), as tallyd's
 * batcher sends them, timed by Redis itself (INFO cpu and commandstats of
 * the Redis at REDIS_URL, so run it on an otherwise idle one). Two passes:
 * every name new to the period, then every name again (the sum path).
 *
 *   node --import tsx bench/micro/merge-profile.ts [names] [--part 3000]
 */
import { createLogger } from '../../src/observability/logger.js';
import { encodeMerge } from '../../src/aggregate/merge-args.js';
import { Batch } from '../../src/aggregate/batch.js';
import { Store } from '../../src/store/store.js';
import { commandSplit, commandStats, cpuOf, dropPrefix } from '../lib/redis-stats.js';

const args = process.argv.slice(2);
const names = Number(args.find((a) => /^\d+$/.test(a)) ?? 1_000_000);
const partAt = args.indexOf('--part');
const part = partAt >= 0 ? Number(args[partAt + 1]) : 3000;
const url = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';


async function main(): Promise<void> {
  const prefix = `mergeprof:${process.pid}:`;
  const store = await Store.open({ url, keyPrefix: prefix, shards: 1 } as never, createLogger('warn'));
  const boundary = (Math.floor(Date.now() / 10_000) + 1000) * 10_000;
  const parts: string[][] = [];
  for (let i = 0; i < names; i += part) {
    const b = new Batch();
    for (let j = i; j < Math.min(names, i + part); j++) b.counter(`scale.metric.${j}`, 1, 1);
    parts.push(encodeMerge(b) as string[]); // (a packed Buffer and strings: ScriptArg)
  }
  try {
    for (const pass of ['new names', 'names again (sums)']) {
      await store.redis.config('SET', 'lua-time-limit', '5000').catch(() => undefined);
      const c0 = cpuOf(await store.redis.info('cpu'));
      const s0 = commandStats(await store.redis.info('commandstats'));
      const t0 = performance.now();
      let id = 0;
      for (const a of parts) await store.merge(`${pass}:${id++}`, boundary, 'm', boundary, a);
      const wall = performance.now() - t0;
      const cpu = cpuOf(await store.redis.info('cpu')) - c0;
      const by = commandSplit(s0, commandStats(await store.redis.info('commandstats')), names);
      console.log(`${pass}: ${names} names in parts of ${part}: Redis CPU ${(cpu * 1000).toFixed(0)} ms (${((cpu * 1e6) / names).toFixed(2)} µs/name: ${by.join(', ')}), wall ${wall.toFixed(0)} ms`);
    }
  } finally {
    await dropPrefix(store.redis, prefix);
    await store.quit();
  }
}

await main();
