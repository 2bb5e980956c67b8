/**
 * The readers of `redis.nodes` (a Redis Cluster's seed nodes) and
 * `redis.waitReplicas`, whose default depends on `nodes`.
 */
import { type Checker, type Raw, join } from './checker.js';
import { describe } from './describe.js';
import type { Done } from './field.js';

const HOST_PORT = /^([^\s:/@]+|\[[0-9a-fA-F:.]+\]):(\d{1,5})$/;

/** `["host:port", ...]`, at least one when present; `url` set as well is an error naming both. */
export function readNodes(c: Checker, o: Raw, k: string, p: string): ReadonlyArray<string> {
  const list = c.array(o, k, p, 'an array of "host:port" strings');
  if (list === null) return Object.freeze([]);
  const out: string[] = [];
  list.forEach((item, i) => {
    const m = typeof item === 'string' ? HOST_PORT.exec(item) : null;
    const portNum = m?.[2] === undefined ? 0 : Number(m[2]);
    if (m === null || portNum < 1 || portNum > 65535) c.problem(join(join(p, k), i), `must be "host:port" (port 1..65535), got ${describe(item)}`);
    else out.push(item as string);
  });
  if (list.length === 0) c.problem(join(p, k), 'must list at least one "host:port" (or leave it out for a single Redis at url)');
  if (o.url !== undefined && list.length > 0) {
    c.problem(join(p, 'url'), `${join(p, 'url')} and ${join(p, k)} are both set: use url for a single Redis, nodes for a Redis Cluster, not both`);
  }
  return Object.freeze(out);
}

/** An integer 0..16; default 1 when nodes are set (a Cluster master has a replica), 0 for a single Redis (often none). */
export function readWaitReplicas(c: Checker, o: Raw, k: string, p: string, done: Done): number {
  const nodes = done.nodes as ReadonlyArray<string> | undefined;
  const def = nodes !== undefined && nodes.length > 0 ? 1 : 0;
  return c.int(o, k, p, def, 0, 16, 'an integer 0..16 (replicas that confirm each merge)');
}
