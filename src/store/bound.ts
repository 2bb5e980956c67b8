/**
 * The bound on a period's distinct names (maxNamesPerPeriod) as each shard
 * applies it, shared by the merges (mergeBatch-11: gauges, the parts' byte
 * budget) and the leader's fold (flush/fold-parts.ts: counters, timers, sets).
 */

/**
 * maxNamesPerPeriod's share of one shard (0: unbounded), the prefix (prefixStats + '.') of the counters it never
 * drops, and the byte budget of a period's packed parts on the shard (BYTES_PER_NAME a name of the bound).
 */
export interface MergeBound {
  readonly maxNames: number;
  readonly exemptPrefix: string;
}

export const UNBOUNDED: MergeBound = Object.freeze({ maxNames: 0, exemptPrefix: '' });

/** One shard's share of maxNamesPerPeriod (0: unbounded) and tallyd's own counters' prefix: the merges' and the fold's bound. */
export function shardBound(maxNamesPerPeriod: number, shards: number, prefixStats: string): MergeBound {
  return { maxNames: maxNamesPerPeriod > 0 ? Math.ceil(maxNamesPerPeriod / shards) : 0, exemptPrefix: `${prefixStats}.` };
}

/**
 * A period's packed parts on a shard take at most this many bytes a name of its bound (maxNames): 256, about 8
 * entries of each name the bound admits (a part's entry is ~30 bytes). A batch part past it is refused
 * (mergeBatch-11): the memory a flood of new names can take. Busy names, appended every batch tick, do not use it
 * up: the shard's leader compacts the open period's parts to one entry a name as they grow (Flusher,
 * flush/compact-parts.ts).
 */
export const BYTES_PER_NAME = 256;

/** The byte budget's floor on a shard (1 MiB): a small bound still leaves room for the parts appended between compactions. */
export const MIN_PARTS_BUDGET = 1 << 20;

/** The byte budget of a period's parts on a shard with this bound's maxNames (0: none). */
export function partsBudget(maxNames: number): number {
  return maxNames > 0 ? Math.max(maxNames * BYTES_PER_NAME, MIN_PARTS_BUDGET) : 0;
}
