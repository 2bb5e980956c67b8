/**
 * `tallyd --check` past the config: is Redis reachable (and what it holds
 * under the key prefix, and whether its recorded number of shards is
 * redis.shards), is Carbon, is the native addon loaded. One line per
 * finding; `ok` false when something tallyd needs does not answer.
 */
import net from 'node:net';
import { redactUrl } from './config/redact.js';
import { DEFAULTS } from './config/defaults.js';
import type { Config } from './config/types.js';
import { nativeAddon, nativeBuildHelp } from './native/addon.js';
import { planRedis } from './store/embedded-redis.js';
import { probeCluster, probeRedis } from './store/probe.js';

export interface CheckReport {
  ok: boolean;
  lines: string[];
}

/** TCP connect within timeoutMs: null when it connected, else why not. */
function tcpConnect(host: string, port: number, timeoutMs: number): Promise<string | null> {
  return new Promise((resolve) => {
    const sock = net.connect({ host, port });
    const done = (why: string | null): void => {
      clearTimeout(timer);
      sock.destroy();
      resolve(why);
    };
    const timer = setTimeout(() => done(`no answer within ${timeoutMs} ms`), timeoutMs);
    sock.once('connect', () => done(null));
    sock.once('error', (err: NodeJS.ErrnoException) => done(err.code === undefined ? err.message : `${err.message}`));
  });
}

async function checkRedis(cfg: Config, timeoutMs: number): Promise<{ ok: boolean; line: string }> {
  const plan = await planRedis(cfg.redis, DEFAULTS.redis.url);
  if (plan.kind === 'fail') return { ok: false, line: plan.message };
  if (plan.kind === 'embed') {
    return { ok: true, line: `redis ${redactUrl(cfg.redis.url)}: not used: ${plan.why}; tallyd would start a private ${plan.bin} with its data in ${plan.dir} (redis.embedded)` };
  }
  const probe = cfg.redis.nodes.length > 0
    ? await probeCluster(cfg.redis.nodes, cfg.redis.keyPrefix, cfg.redis.shards, timeoutMs, cfg.redis)
    : await probeRedis(cfg.redis.url, cfg.redis.keyPrefix, cfg.redis.shards, timeoutMs, cfg.redis);
  return { ok: probe.ok, line: probe.text };
}

async function checkCarbon(cfg: Config, timeoutMs: number): Promise<{ ok: boolean; line: string }> {
  if (!cfg.backends.includes('graphite') || cfg.graphiteHost === null) {
    return { ok: true, line: 'carbon: not configured (no graphiteHost): aggregates are not sent to Carbon' };
  }
  const pickle = cfg.graphiteProtocol === 'pickle';
  const port = pickle ? cfg.graphitePicklePort : cfg.graphitePort;
  const what = `carbon ${cfg.graphiteHost}:${port} (${pickle ? 'pickle' : 'plaintext'})`;
  const why = await tcpConnect(cfg.graphiteHost, port, timeoutMs);
  return why === null ? { ok: true, line: `${what}: reachable` } : { ok: false, line: `${what}: unreachable: ${why}` };
}

function checkAddon(cfg: Config): { ok: boolean; line: string } {
  const lib = nativeAddon();
  if (typeof lib !== 'string') return { ok: true, line: 'native addon: loaded (UDP reader, ZeroMQ scanner and inflater)' };
  const needed = cfg.servers.some((s) => s.server === 'udp' && s.udpReader === 'native');
  const effect = needed ? 'a UDP server has udpReader "native", so the start would fail' : 'UDP is read with node:dgram, ZeroMQ messages with node:zlib (slower)';
  return { ok: !needed, line: `native addon: not loaded: ${lib}; ${effect}; ${nativeBuildHelp()}` };
}

export async function checkReachable(cfg: Config, timeoutMs = 2000): Promise<CheckReport> {
  const [redis, carbon] = await Promise.all([checkRedis(cfg, timeoutMs), checkCarbon(cfg, timeoutMs)]);
  const addon = checkAddon(cfg);
  const all = [redis, carbon, addon];
  return { ok: all.every((c) => c.ok), lines: all.map((c) => `${c.ok ? 'ok  ' : 'FAIL'} ${c.line}`) };
}
