/**
 * The reference for the fold (flush/fold-parts.ts): layout 2's merge, which
 * folded each batch into a period's hashes in Redis, name by name. Its script
 * is kept verbatim in test/fixtures/v2/mergeBatch-15.lua (with its
 * `--#include outbox.lua` inlined from src/) and run here on the real Redis
 * with its own ARGV encoding (layout 2's encodeMerge, one shard, no
 * passthrough lines), so fold-parts.test can check that the fold admits,
 * sums, drops and clamps exactly as the merges did.
 */
import { readFileSync } from 'node:fs';
import type { Redis } from 'ioredis';
import type { Batch } from '../../src/aggregate/batch.js';
import { FLAG_LATE, PartWriter } from '../../src/store/packed-parts.js';
import { packSamples } from '../../src/store/sample-codec.js';

const SCRIPT = readFileSync(new URL('../fixtures/v2/mergeBatch-15.lua', import.meta.url), 'utf8').replace(
  /^--#include ([\w.-]+\.lua)[ \t]*$/gm,
  (_line, inc: string) => readFileSync(new URL(`../../src/store/scripts/includes/${inc}`, import.meta.url), 'utf8'),
);

/** Layout 2's merge ARGV for a batch (from ARGV[10] on): counters, timers, timer counts, gauges, sets, passthrough. */
function encodeV2(batch: Batch, batchId: string): Array<string | Buffer> {
  const args: Array<string | Buffer> = [];
  const section = (items: Array<string | Buffer>, n: number): void => {
    args.push(String(n));
    for (const x of items) args.push(x);
  };
  const counters = batch.counterNames.flatMap((name, i) => [name, String(batch.counterValue(i))]);
  section(counters, batch.counterNames.length);
  const timers = batch.timerNames.flatMap((name, i) => {
    const at = batch.timerOffset(i);
    return [`${name}\n${batchId}`, packSamples(batch.timerSampleArray, at, at + batch.timerLength(i))];
  });
  section(timers, batch.timerNames.length);
  section(batch.timerNames.flatMap((name, i) => [name, String(batch.timerCount(i))]), batch.timerNames.length);
  section(batch.gaugeNames.flatMap((name, i) => [name, batch.gaugeIsDelta(i) ? 'd' : 's', String(batch.gaugeValue(i))]), batch.gaugeNames.length);
  const members = [...batch.sets].flatMap(([name, e]) => [...e.members].map((m) => `${name}\n${m}`));
  section(members, members.length);
  section([], 0);
  return args;
}

/** A period of layout 2 under `base` (a test's own key prefix). */
export class V2Period {
  constructor(
    private readonly redis: Redis,
    private readonly base: string,
    private readonly boundaryMs: number,
  ) {}

  private key(part: string): string {
    return `${this.base}p:${this.boundaryMs}:${part}`;
  }

  /** mergeBatch-15 of one batch; its outcome as Store.merge reported it. */
  async merge(batch: Batch, batchId: string, late: boolean, maxNames: number, exemptPrefix: string): Promise<{ dropped: number; examples: string[]; clamped: number }> {
    const b = this.base;
    const keys = [`${b}merged`, `${b}closed`, `${b}members`, `${b}open`, this.key('counters'), this.key('timers'), this.key('timer_counts'), this.key('sets'),
      this.key('gauges'), `${b}outbox`, `${b}outbox_bytes`, `${b}gauges`, this.key('names'), this.key('set_names'), `${b}merged_counts:${batchId}`];
    const argv = [batchId, String(Date.now()), '60000', String(this.boundaryMs), 'member', String(this.boundaryMs + 10_000), late ? '1' : '0', String(maxNames), exemptPrefix,
      ...encodeV2(batch, batchId)];
    const res = (await this.redis.eval(SCRIPT, keys.length, ...keys, ...argv)) as Array<number | string>;
    if (Number(res[0]) !== 1) throw new Error(`mergeBatch-15 answered ${JSON.stringify(res)}`);
    return { dropped: Number(res[1]), examples: res.slice(3).map(String), clamped: Number(res[2]) };
  }

  /** The persistent gauges the merges read (held gauges are not new). */
  async holdGauges(names: readonly string[]): Promise<void> {
    await this.redis.del(`${this.base}gauges`);
    if (names.length > 0) await this.redis.hset(`${this.base}gauges`, ...names.flatMap((g) => [g, '1']));
  }

  async read(): Promise<{ counters: Record<string, string>; timerCounts: Record<string, string>; timers: Record<string, Buffer>; gauges: Record<string, string>; sets: string[]; count: number }> {
    const [counters, timerCounts, timers, gauges, sets, count] = await Promise.all([
      this.redis.hgetall(this.key('counters')),
      this.redis.hgetall(this.key('timer_counts')),
      this.redis.hgetallBuffer(this.key('timers')),
      this.redis.hgetall(this.key('gauges')),
      this.redis.hkeys(this.key('sets')),
      this.redis.get(this.key('names')),
    ]);
    return { counters, timerCounts, timers, gauges, sets, count: Number(count ?? 0) };
  }
}

/**
 * A whole batch as one packed part with its gauges in it (layout 3's merges send gauges as ARGV instead), for
 * comparing the fold, gauges included, with the reference.
 */
export function packWhole(batch: Batch, late = false): Buffer {
  const p = new PartWriter(late ? FLAG_LATE : 0);
  batch.counterNames.forEach((name, i) => p.counter(name, batch.counterValue(i)));
  batch.timerNames.forEach((name, i) => {
    const from = batch.timerOffset(i);
    p.timer(name, batch.timerCount(i), batch.timerSampleArray, from, from + batch.timerLength(i));
  });
  batch.gaugeNames.forEach((name, i) => p.gauge(name, batch.gaugeIsDelta(i), batch.gaugeValue(i)));
  for (const [name, e] of batch.sets) p.set(name, e.members, e.members.size);
  return p.finish();
}
