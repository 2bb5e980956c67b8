/**
 * The Redis connection: one ioredis `Redis` for `redis.url`, or an ioredis
 * `Cluster` for `redis.nodes`. Every key carries the hash tag `{0}` (keys.ts),
 * so on a Cluster every script and pipeline lands on the one master that owns
 * that slot; ioredis follows MOVED/ASK/TRYAGAIN/CLUSTERDOWN for single commands.
 *
 * Durability on a failover (redis.waitReplicas): a write tallyd acknowledges
 * (a merge, a commit) is followed by `WAIT <n> <timeout>` in the same
 * pipeline, hence on the same connection to the same master, and counts only
 * once n replicas have it; otherwise the caller keeps it and retries (merges
 * and commits are idempotent).
 */
import { Cluster, Redis } from 'ioredis';
import { StoreError } from './errors.js';
import type { ScriptArg } from './scripts.js';

export type RedisClient = Redis | Cluster;

export interface ClientConfig {
  readonly url: string;
  readonly nodes?: ReadonlyArray<string>;
  /** redis.username / redis.password ('' or absent: none; the url's own, if it has any). */
  readonly username?: string;
  readonly password?: string;
}

/** ioredis's username/password options for cfg: on every node of a Cluster (redisOptions), or over the url's. */
export function authOptions(cfg: Pick<ClientConfig, 'username' | 'password'>): { username?: string; password?: string } {
  if (cfg.password === undefined || cfg.password === '') return {};
  return cfg.username === undefined || cfg.username === '' ? { password: cfg.password } : { username: cfg.username, password: cfg.password };
}

/** Redis's answers to a wrong or missing password (AUTH, or any command before it). */
const AUTH_REFUSED = /\b(WRONGPASS|NOAUTH|NOPERM)\b|invalid password|no password is set/i;

/**
 * The Redis answer behind a failed connect, as one line: ioredis's Cluster
 * reports "Failed to refresh slots cache." and keeps the node's own reply
 * (WRONGPASS, NOAUTH, ECONNREFUSED) in lastNodeError.
 */
export function connectFailure(err: Error): { why: string; auth: boolean } {
  const node = (err as Error & { lastNodeError?: Error }).lastNodeError;
  const why = node !== undefined && !err.message.includes(node.message) ? `${err.message} ${node.message}` : err.message;
  return { why, auth: AUTH_REFUSED.test(why) };
}

/** Redis replies that mean "not now, here" on a Cluster (a slot moving, a failover), never "bad command". */
const TRANSIENT = /^(MOVED|ASK|TRYAGAIN|CLUSTERDOWN|LOADING|READONLY|MASTERDOWN|NOREPLICAS) /;

export function isCluster(redis: RedisClient): redis is Cluster {
  return redis instanceof Cluster;
}

function hostPort(node: string): { host: string; port: number } {
  const colon = node.lastIndexOf(':');
  const host = node.slice(0, colon);
  return { host: host.startsWith('[') ? host.slice(1, -1) : host, port: Number(node.slice(colon + 1)) };
}

export function createClient(cfg: ClientConfig, commandTimeout: number): RedisClient {
  const connectionName = `tallyd:${process.pid}`;
  const retry = (times: number): number => Math.min(times * 200, 2000);
  if (cfg.nodes !== undefined && cfg.nodes.length > 0) {
    return new Cluster(cfg.nodes.map(hostPort), {
      lazyConnect: true,
      scaleReads: 'master',
      enableReadyCheck: true,
      enableAutoPipelining: false,
      maxRedirections: 16,
      retryDelayOnFailover: 200,
      retryDelayOnClusterDown: 200,
      retryDelayOnTryAgain: 100,
      clusterRetryStrategy: retry,
      redisOptions: { commandTimeout, connectionName, maxRetriesPerRequest: 2, ...authOptions(cfg) },
    });
  }
  return new Redis(cfg.url, {
    commandTimeout, lazyConnect: true, maxRetriesPerRequest: 2, enableAutoPipelining: false, retryStrategy: retry, connectionName, ...authOptions(cfg),
  });
}

/**
 * A Cluster's transient reply (a slot migrating or failing over) becomes a
 * StoreError: the caller keeps its batch and retries it, where a ReplyError
 * would count as Redis rejecting the batch. MOVED also refreshes the slot map,
 * which a pipeline (unlike a single command) does not do by itself.
 */
export function clusterTransient(redis: RedisClient, err: unknown): unknown {
  if (!isCluster(redis) || !(err instanceof Error) || !TRANSIENT.test(err.message)) return err;
  if (err.message.startsWith('MOVED ')) redis.refreshSlotsCache();
  return new StoreError('EREDIS_CLUSTER', `redis cluster: ${err.message}; retried`, { cause: err });
}

export interface WaitPolicy {
  /** redis.waitReplicas: 0 sends no WAIT. */
  readonly replicas: number;
  /** redis.waitTimeout (ms). */
  readonly timeoutMs: number;
  /**
   * Called instead of throwing when fewer replicas confirmed a write whose
   * result must not be thrown away (a commit: a lost one is recomputed from
   * the pending period the replica still holds); merges always throw.
   */
  readonly onUnconfirmed?: (acked: number) => void;
}

/**
 * Runs the defined script `command` (see scripts.ts) and WAITs for the
 * policy's replicas on the same connection. Throws a StoreError
 * (EREDIS_WAIT) when fewer replicas confirmed it within the timeout, unless
 * the policy has onUnconfirmed (then the script's result is returned).
 */
export async function runConfirmed(redis: RedisClient, command: string, keysAndArgs: ScriptArg[], policy: WaitPolicy): Promise<unknown> {
  const p = redis.pipeline();
  const call = (p as unknown as Record<string, (a: ScriptArg[]) => unknown>)[command];
  if (call === undefined) throw new StoreError('ESCRIPT', `script command ${command} is not defined`);
  call.call(p, keysAndArgs);
  p.wait(policy.replicas, policy.timeoutMs);
  let res: Array<[Error | null, unknown]> | null;
  try {
    res = await p.exec();
  } catch (err) {
    throw clusterTransient(redis, err);
  }
  if (!res || res.length < 2) throw new StoreError('EREDIS', 'pipeline aborted');
  const [scriptErr, value] = res[0] as [Error | null, unknown];
  if (scriptErr) throw clusterTransient(redis, scriptErr);
  const [waitErr, acked] = res[1] as [Error | null, unknown];
  if (waitErr) throw new StoreError('EREDIS_WAIT', `WAIT failed: ${waitErr.message}`, { cause: waitErr });
  if (Number(acked) < policy.replicas) {
    if (policy.onUnconfirmed !== undefined) {
      policy.onUnconfirmed(Number(acked));
      return value;
    }
    throw new StoreError('EREDIS_WAIT', `${Number(acked)} of ${policy.replicas} replicas confirmed the write within redis.waitTimeout `
      + `(${policy.timeoutMs} ms; redis.waitReplicas); kept and retried`);
  }
  return value;
}
