/**
 * Shards (DESIGN "Shards"): a name (with its tags, as it is stored) belongs
 * to one of `redis.shards` logical shards by a stable hash of its own, never
 * Redis's slot function, so the same name lands on the same shard in every
 * tallyd version and process. Each shard's keys carry the shard's hash tag;
 * the tags are chosen so that shard i's slot lies in the i-th of S equal
 * bands of Redis Cluster's 16,384 slots: a cluster created with
 * `redis-cli --cluster create` (which hands each master one contiguous,
 * equal range) gets the shards spread evenly over its masters.
 *
 * One shard keeps the layout of a tallyd from before shards, hash tag `{0}`.
 */
import calculateSlot from 'cluster-key-slot';

export const SLOTS = 16384;
export const MAX_SHARDS = 1024;

/**
 * FNV-1a (32 bit) over the UTF-16 code units of the name: stable, allocation
 * free, and spreads metric names (which share long prefixes) evenly.
 */
export function shardHash(name: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < name.length; i++) {
    h ^= name.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return h >>> 0;
}

/** The hash tag of each of count shards: '0' for one shard, else `<i>-<n>` with its slot in band i. */
export function shardTags(count: number): string[] {
  if (count === 1) return ['0'];
  const tags: string[] = [];
  for (let i = 0; i < count; i++) {
    const lo = Math.floor((i * SLOTS) / count);
    const hi = Math.floor(((i + 1) * SLOTS) / count);
    const mid = (lo + hi) >> 1;
    // The first candidate whose slot lies in the middle half of the band (or nearest the middle): deterministic,
    // and clear of the band's edges, where a cluster's masters' ranges may be a slot off.
    const near = Math.max(0, (hi - lo) >> 2);
    let best = '';
    let bestDist = Infinity;
    for (let n = 0; n < 100_000 && bestDist > near; n++) {
      const tag = `${i}-${n}`;
      const slot = calculateSlot(tag);
      if (slot < lo || slot >= hi) continue;
      const d = Math.abs(slot - mid);
      if (d < bestDist) {
        best = tag;
        bestDist = d;
      }
    }
    if (best === '') throw new Error(`no hash tag found for shard ${i} of ${count}`);
    tags.push(best);
  }
  return tags;
}

/** Which shard a stored name (or a passthrough line) belongs to. */
export class ShardMap {
  readonly tags: readonly string[];

  constructor(readonly count: number) {
    if (!Number.isInteger(count) || count < 1 || count > MAX_SHARDS) throw new RangeError(`shards must be an integer 1..${MAX_SHARDS}, got ${count}`);
    this.tags = shardTags(count);
  }

  of(name: string): number {
    return this.count === 1 ? 0 : shardHash(name) % this.count;
  }
}
