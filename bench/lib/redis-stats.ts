/** What the benchmarks read of the Redis they run on: its CPU, its command times, and their own keys to drop. */
import type { Redis, Cluster } from 'ioredis';

/** redis-server's CPU seconds so far (INFO cpu: user + sys). */
export function cpuOf(info: string): number {
  const v = (k: string) => Number(new RegExp(`${k}:([\\d.]+)`).exec(info)?.[1] ?? 0);
  return v('used_cpu_user') + v('used_cpu_sys');
}

/** A command's calls and µs so far (INFO commandstats; a script's µs include the commands it calls, counted apart too). */
export interface CommandStat {
  calls: number;
  usec: number;
}

/** INFO commandstats of one node, or summed over several nodes' texts. */
export function commandStats(texts: string | readonly string[]): Map<string, CommandStat> {
  const out = new Map<string, CommandStat>();
  for (const text of typeof texts === 'string' ? [texts] : texts) {
    for (const m of text.matchAll(/^cmdstat_([^:]+):calls=(\d+),usec=(\d+)/gm)) {
      const cur = out.get(m[1]!) ?? { calls: 0, usec: 0 };
      cur.calls += Number(m[2]);
      cur.usec += Number(m[3]);
      out.set(m[1]!, cur);
    }
  }
  return out;
}

/** The commands that took over 1 ms between two commandStats() readings, most first, each as `<command> <µs per name>`. */
export function commandSplit(before: Map<string, CommandStat>, after: Map<string, CommandStat>, names: number): string[] {
  return [...after]
    .map(([cmd, v]) => [cmd, v.usec - (before.get(cmd)?.usec ?? 0)] as const)
    .filter(([, usec]) => usec > 1000)
    .sort((a, b) => b[1] - a[1])
    .map(([cmd, usec]) => `${cmd} ${(usec / names).toFixed(2)}`);
}

/** Unlinks every key under prefix, a scan page at a time. */
export async function dropPrefix(redis: Redis | Cluster, prefix: string): Promise<void> {
  let cursor = '0';
  do {
    const [next, keys] = await redis.scan(cursor, 'MATCH', `${prefix}*`, 'COUNT', 1000);
    if (keys.length) await redis.unlink(...keys);
    cursor = next;
  } while (cursor !== '0');
}
