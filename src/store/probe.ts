/**
 * `tallyd --check`'s look at Redis: connect and PING within a time limit, the
 * server's version, which key layouts the prefix holds (this tallyd's,
 * another version's, or none), and the prefix's recorded number of shards
 * beside redis.shards (they must match, or tallyd refuses to start:
 * ESHARDS). Read-only; one short connection, no retries.
 */
import { Cluster, Redis } from 'ioredis';
import { redactUrl } from '../config/redact.js';
import { authOptions, connectFailure } from './client.js';
import { LAYOUT_VERSION } from './keys.js';
import { readShardsRecord, shardsMismatchMessage } from './shards-record.js';

/** redis.username / redis.password ('' for none). */
export interface ProbeAuth {
  readonly username?: string;
  readonly password?: string;
}

export interface RedisProbe {
  ok: boolean;
  /** One line for a person: what answered, or why nothing did. */
  text: string;
}

/** SCAN rounds (COUNT 1000 each) spent looking for the prefix's keys: a big keyspace is sampled, not walked. */
const SCAN_ROUNDS = 20;

function globEscape(text: string): string {
  return text.replace(/[*?[\]\\]/g, (c) => `\\${c}`);
}

/** Layout versions (`<prefix>v<n>:`) among the first keys under the prefix, and whether the sample was complete. */
async function layoutsUnder(redis: Redis, keyPrefix: string): Promise<{ versions: Set<number>; complete: boolean }> {
  const versions = new Set<number>();
  let cursor = '0';
  for (let round = 0; round < SCAN_ROUNDS; round++) {
    const [next, keys] = await redis.scan(cursor, 'MATCH', `${globEscape(keyPrefix)}v*`, 'COUNT', 1000);
    for (const key of keys) {
      const m = /^v(\d+):/.exec(key.slice(keyPrefix.length));
      if (m?.[1] !== undefined) versions.add(Number(m[1]));
    }
    cursor = next;
    if (cursor === '0') return { versions, complete: true };
  }
  return { versions, complete: false };
}

/** Why a probe failed, as one line: unreachable, or the credentials refused. */
function failureText(where: string, err: Error): string {
  const { why, auth } = connectFailure(err);
  return auth ? `redis ${where}: refused the credentials (redis.username, redis.password): ${why}` : `redis ${where}: unreachable: ${why}`;
}

/** What the prefix holds, as a sentence: this layout, others, none. */
function describeData(keyPrefix: string, versions: Set<number>, complete: boolean): string {
  const ours = versions.has(LAYOUT_VERSION);
  versions.delete(LAYOUT_VERSION);
  const others = [...versions].sort((a, b) => a - b).map((v) => `v${v}`);
  let data = ours ? `holds tallyd data of this layout (v${LAYOUT_VERSION})` : `holds no tallyd data of layout v${LAYOUT_VERSION} yet`;
  if (others.length > 0) data += `; also data of layout ${others.join(', ')}, which this tallyd does not read`;
  if (!complete) data += ' (sampled the first keys only)';
  return `key prefix ${JSON.stringify(keyPrefix)} ${data}`;
}

/** The configured and recorded numbers of shards as a sentence; ok false (with the ESHARDS message) when they differ. */
async function describeShards(redis: Redis | Cluster, keyPrefix: string, configured: number): Promise<{ ok: boolean; text: string }> {
  const rec = await readShardsRecord(redis, keyPrefix);
  const recorded = rec.count === null ? 'none yet' : rec.legacy ? '1 (a state from before shards, not recorded yet)' : String(rec.count);
  const text = `redis.shards ${configured}, recorded for the prefix: ${recorded}`;
  if (rec.count === null || rec.count === configured) return { ok: true, text };
  return { ok: false, text: `${text}: ESHARDS ${shardsMismatchMessage(keyPrefix, configured, rec.count)}` };
}

/**
 * The same look at a Redis Cluster (redis.nodes): its state (CLUSTER INFO),
 * how many masters, the version, and the prefix's layouts, scanned on every master.
 */
export async function probeCluster(nodes: ReadonlyArray<string>, keyPrefix: string, shards: number, timeoutMs: number, auth: ProbeAuth = {}): Promise<RedisProbe> {
  const where = `cluster nodes ${nodes.join(',')}`;
  const cluster = new Cluster(nodes.map((n) => {
    const colon = n.lastIndexOf(':');
    const host = n.slice(0, colon);
    return { host: host.startsWith('[') ? host.slice(1, -1) : host, port: Number(n.slice(colon + 1)) };
  }), {
    lazyConnect: true,
    clusterRetryStrategy: () => null,
    slotsRefreshTimeout: timeoutMs,
    redisOptions: { connectTimeout: timeoutMs, commandTimeout: timeoutMs, maxRetriesPerRequest: 0, connectionName: `tallyd-check:${process.pid}`, ...authOptions(auth) },
  });
  let lastError: Error | undefined;
  cluster.on('error', (err: Error) => {
    lastError = err;
  });
  try {
    await cluster.connect();
    const masters = cluster.nodes('master');
    const first = masters[0];
    if (first === undefined) return { ok: false, text: `redis ${where}: no master known` };
    const state = /cluster_state:(\w+)/.exec(await first.cluster('INFO'))?.[1] ?? 'unknown';
    const version = /redis_version:([^\r\n]+)/.exec(await first.info('server'))?.[1] ?? 'unknown';
    const versions = new Set<number>();
    let complete = true;
    for (const m of masters) {
      const found = await layoutsUnder(m, keyPrefix);
      for (const v of found.versions) versions.add(v);
      complete &&= found.complete;
    }
    const sh = await describeShards(cluster, keyPrefix, shards);
    const text = `redis ${where}: reachable, Redis ${version}, ${masters.length} masters, cluster_state ${state}; ${describeData(keyPrefix, versions, complete)}; ${sh.text}`;
    return { ok: state === 'ok' && sh.ok, text };
  } catch (err) {
    return { ok: false, text: failureText(where, lastError ?? (err as Error)) };
  } finally {
    cluster.disconnect();
  }
}

export async function probeRedis(url: string, keyPrefix: string, shards: number, timeoutMs: number, auth: ProbeAuth = {}): Promise<RedisProbe> {
  const where = redactUrl(url);
  const redis = new Redis(url, {
    lazyConnect: true,
    connectTimeout: timeoutMs,
    commandTimeout: timeoutMs,
    maxRetriesPerRequest: 0,
    retryStrategy: () => null,
    enableOfflineQueue: false,
    connectionName: `tallyd-check:${process.pid}`,
    ...authOptions(auth),
  });
  let lastError: Error | undefined;
  redis.on('error', (err: Error) => {
    lastError = err;
  });
  try {
    await redis.connect();
    await redis.ping();
    const info = await redis.info('server');
    const version = /redis_version:([^\r\n]+)/.exec(info)?.[1] ?? 'unknown';
    const { versions, complete } = await layoutsUnder(redis, keyPrefix);
    const sh = await describeShards(redis, keyPrefix, shards);
    return { ok: sh.ok, text: `redis ${where}: reachable, Redis ${version}; ${describeData(keyPrefix, versions, complete)}; ${sh.text}` };
  } catch (err) {
    return { ok: false, text: failureText(where, lastError ?? (err as Error)) };
  } finally {
    redis.disconnect();
  }
}
