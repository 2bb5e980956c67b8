/**
 * The flush leases as tests see them: each shard i has its lease at
 * `<keyPrefix>v<LAYOUT_VERSION>:{<tag i>}:lease` (Keys.lease under the shard's
 * hash tag, src/store/shards.ts), holding the token of the flush thread that
 * leads the shard. The shard count is the one recorded under the prefix
 * (`<prefix>v2:shards`), so the helpers follow whatever a tallyd started with
 * (16 by default; one shard keeps the tag `{0}`).
 */
import { Keys } from '../../src/store/keys.js';
import type { RedisClient } from '../../src/store/client.js';
import { ShardMap } from '../../src/store/shards.js';
import { recordedShardMap, REDIS_URL, withClient } from './redis.js';
import type { ChildTallyd } from './tallyd.js';

/** The lease key of shard (an index) of a prefix with shards shards (1: the tag `{0}` of the one-shard layout). */
export function leaseKey(prefix: string, shard = 0, shards = 1): string {
  return new Keys(prefix, new ShardMap(shards).tags[shard]).lease;
}

/** Every shard's lease holder (a token, or null when free), shard i at index i; [] before a tallyd recorded the shard count. */
export async function leaseHolders(prefix: string, on: string | RedisClient = REDIS_URL): Promise<Array<string | null>> {
  return withClient(on, async (r) => {
    const map = await recordedShardMap(r, prefix);
    if (map === null) return [];
    const out: Array<string | null> = [];
    // One GET per shard (each lease key is in its own slot on a cluster).
    for (const tag of map.tags) out.push(await r.get(new Keys(prefix, tag).lease));
    return out;
  });
}

async function pollHolders<T>(what: string, prefix: string, on: string | RedisClient, timeoutMs: number,
  done: (holders: Array<string | null>) => T | undefined): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: Array<string | null> = [];
  for (;;) {
    last = await leaseHolders(prefix, on);
    const v = last.length > 0 ? done(last) : undefined;
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`${what} within ${timeoutMs} ms; holders per shard: ${JSON.stringify(last)}`);
    await new Promise((res) => setTimeout(res, 25));
  }
}

/** Polls shard's lease (shard 0 by default) until a token is there; throws (naming the holders) after timeoutMs. */
export function waitForLeaseHolder(url: string | RedisClient, prefix: string, timeoutMs = 10_000, shard = 0): Promise<string> {
  return pollHolders(`no leader took the lease of shard ${shard}`, prefix, url, timeoutMs, (h) => h[shard] ?? undefined);
}

/** Polls until every shard is led; returns the holders (shard i at index i). */
export function waitAllLed(url: string | RedisClient, prefix: string, timeoutMs = 10_000): Promise<string[]> {
  return pollHolders('not every shard was led', prefix, url, timeoutMs, (h) => (h.every((t) => t !== null) ? (h as string[]) : undefined));
}

/** Polls until every shard is led and pred holds for the holders; returns them. */
export function waitHolders(url: string | RedisClient, prefix: string, what: string, pred: (holders: string[]) => boolean, timeoutMs = 10_000): Promise<string[]> {
  return pollHolders(what, prefix, url, timeoutMs, (h) => (h.every((t) => t !== null) && pred(h as string[]) ? (h as string[]) : undefined));
}

/** The shards each token leads: token -> shard indexes. */
export function shardsByHolder(holders: ReadonlyArray<string | null>): Map<string, number[]> {
  const out = new Map<string, number[]>();
  holders.forEach((t, i) => {
    if (t !== null) out.set(t, [...(out.get(t) ?? []), i]);
  });
  return out;
}

/**
 * A child's flush token: the one named by its 'became the flushing leader' lines (one token per process, whatever
 * shards it leads); null until it led a shard.
 */
export function tokenOf(child: ChildTallyd): string | null {
  for (const line of child.output().split('\n')) {
    if (!line.includes('became the flushing leader')) continue;
    const m = /"token":"([^"]+)"/.exec(line);
    if (m) return m[1] as string;
  }
  return null;
}

/**
 * Which child a lease token belongs to: the one whose output names the token
 * (its 'became the flushing leader' lines carry it); failing that, the only
 * one that logged 'became the flushing leader'. -1 when neither tells.
 */
export function leaderIndex(children: readonly ChildTallyd[], token: string): number {
  const byToken = children.findIndex((c) => c.output().includes(token));
  if (byToken >= 0) return byToken;
  const logged = children.map((c, i) => (c.output().includes('became the flushing leader') ? i : -1)).filter((i) => i >= 0);
  return logged.length === 1 ? (logged[0] as number) : -1;
}
