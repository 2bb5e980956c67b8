/**
 * The readers of `redis.nodes` (a Redis Cluster's seed nodes),
 * `redis.username` / `redis.password` (the credentials for `nodes` or `url`)
 * and `redis.waitReplicas`, whose default depends on `nodes`.
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

/** The user and password `url` itself carries (as ioredis reads them), '' when none. */
function urlCredentials(url: unknown): { username: string; password: string } {
  if (typeof url !== 'string' || !URL.canParse(url)) return { username: '', password: '' };
  const u = new URL(url);
  return { username: u.username, password: u.password || (u.searchParams.get('password') ?? '') };
}

/**
 * `redis.username` / `redis.password`: a string, '' for none. A wrong value is
 * never echoed (a password's problem names the key, not the value). Set while
 * `url` carries credentials too is an error: one place for them.
 */
export function readCredential(which: 'username' | 'password'): (c: Checker, o: Raw, k: string, p: string, done: Done) => string {
  return (c, o, k, p, done) => {
    const value = o[k];
    if (value === undefined || value === null) return '';
    if (typeof value !== 'string') {
      c.problem(join(p, k), `must be a string, got ${which === 'password' ? `a ${typeof value} (not shown)` : describe(value)}`);
      return '';
    }
    const inUrl = urlCredentials(done.url);
    if (value !== '' && (inUrl.username !== '' || inUrl.password !== '')) {
      c.problem(join(p, k), `and the user or password in ${join(p, 'url')} are both set: give the credentials in one place`);
    }
    if (which === 'username' && value !== '' && (o.password === undefined || o.password === null || o.password === '')) {
      c.problem(join(p, k), `needs ${join(p, 'password')} (Redis authenticates a user with its password)`);
    }
    return value;
  };
}
