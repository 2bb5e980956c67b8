/**
 * The flush lease as tests see it: `<keyPrefix>v<LAYOUT_VERSION>:{<shard>}:lease`
 * holds the leading flusher's token. The layout version comes from
 * src/store/keys.ts, so the tests follow a layout bump.
 */
import { Redis } from 'ioredis';
import { Keys, LAYOUT_VERSION } from '../../src/store/keys.js';
import { ShardMap } from '../../src/store/shards.js';
import type { ChildTallyd } from './tallyd.js';

export function leaseKey(prefix: string, shard = '0'): string {
  return `${prefix}v${LAYOUT_VERSION}:{${shard}}:lease`;
}

/**
 * Polls the lease key of shard tag `shard` (default: shard 0's tag, from the number of shards the prefix's state
 * records) until a token is there; throws (naming the key) after timeoutMs.
 */
export async function waitForLeaseHolder(url: string, prefix: string, timeoutMs = 10_000, shard?: string): Promise<string> {
  const r = new Redis(url, { maxRetriesPerRequest: 1 });
  try {
    const key = leaseKey(prefix, shard ?? new ShardMap(Number((await r.get(Keys.shardsRecord(prefix))) ?? 1)).tags[0]);
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const token = await r.get(key);
      if (token !== null) return token;
      if (Date.now() > deadline) throw new Error(`no leader took the lease ${key} within ${timeoutMs} ms`);
      await new Promise((res) => setTimeout(res, 25));
    }
  } finally {
    r.disconnect();
  }
}

/**
 * Which child leads: the one whose output names the lease token (its
 * 'became the flushing leader' line carries it); failing that, the only one
 * that logged 'became the flushing leader'. -1 when neither tells.
 */
export function leaderIndex(children: readonly ChildTallyd[], token: string): number {
  const byToken = children.findIndex((c) => c.output().includes(token));
  if (byToken >= 0) return byToken;
  const logged = children.map((c, i) => (c.output().includes('became the flushing leader') ? i : -1)).filter((i) => i >= 0);
  return logged.length === 1 ? (logged[0] as number) : -1;
}
