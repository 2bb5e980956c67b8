/**
 * The list-shaped statsd settings: servers (with statsd's fallback to the
 * top-level server keys, and tallyd's ZeroMQ entries), percentThreshold,
 * histogram, calculatedTimerMetrics and backends.
 */

import { type Checker, isObject, join, type Raw } from './checker.js';
import { describe, suggest } from './describe.js';
import { readFields } from './field.js';
import {
  type AnyServerConfig, isZmqServer, type ServerDefaults, serverFields, SERVER_DEFAULTS, SERVER_KEYS, type ServerKind, UDP_READERS,
  UNIMPLEMENTED_SERVER, ZMQ_FIELDS, ZMQ_SERVER_KEYS, type ZmqServerConfig, zmqPort,
} from './schema-servers.js';

export type BackendName = 'graphite' | 'console';

export interface HistogramConfig {
  /** Substring matched against a timer's name (statsd: `key.indexOf(metric) > -1`), first match wins. */
  readonly metric: string;
  /** Upper bounds (exclusive) of the bins, ascending; 'inf' for the last open bin. */
  readonly bins: ReadonlyArray<number | 'inf'>;
}

export const HISTOGRAM_KEYS: ReadonlyArray<string> = ['metric', 'bins'];

/** statsd's calculatedTimerMetrics vocabulary (`*_percent` selects the per-percentile ones). */
export const TIMER_METRICS: ReadonlyArray<string> = Object.freeze([
  'count', 'count_ps', 'lower', 'upper', 'mean', 'sum', 'sum_squares', 'std', 'median', 'histogram',
  'count_percent', 'mean_percent', 'upper_percent', 'lower_percent', 'sum_percent', 'sum_squares_percent',
]);

const SERVER_NAME = /^(?:\.\/)?(?:servers\/)?(udp|tcp|zmq)(?:\.js)?$/;
const GRAPHITE_BACKEND = /^(?:\.\/)?(?:backends\/)?graphite(?:\.js)?$/;
const CONSOLE_BACKEND = /^(?:\.\/)?(?:backends\/)?console(?:\.js)?$/;

/** One server from an entry of `servers`, or from the top level (path ''); null if it is skipped. */
function readServer(c: Checker, entry: Raw, path: string, d: ServerDefaults): AnyServerConfig | null {
  const name = entry['server'];
  let server: ServerKind = 'udp'; // statsd: "The default server is UDP"
  if (name !== undefined) {
    const match = typeof name === 'string' ? SERVER_NAME.exec(name) : null;
    if (match?.[1] === 'zmq') {
      if (path !== '') return readZmqServer(c, entry, path);
      c.problem(join(path, 'server'), 'ZeroMQ servers are entries of servers, e.g. servers: [{ server: "zmq", bind: "tcp://0.0.0.0:5555" }]');
      return null;
    }
    if (match?.[1] === 'udp' || match?.[1] === 'tcp') server = match[1];
    else c.problem(join(path, 'server'), `must be "udp", "tcp", "zmq", "./servers/udp" or "./servers/tcp", got ${describe(name)}`);
  }
  if (path !== '') c.keys(entry, path, SERVER_KEYS, UNIMPLEMENTED_SERVER);
  return { server, ...readFields(c, entry, path, serverFields(d)) };
}

function readZmqServer(c: Checker, entry: Raw, path: string): ZmqServerConfig {
  c.keys(entry, path, ZMQ_SERVER_KEYS, UNIMPLEMENTED_SERVER);
  return { server: 'zmq', ...readFields(c, entry, path, ZMQ_FIELDS) };
}

export function readServers(c: Checker, raw: Raw): ReadonlyArray<AnyServerConfig> {
  const d: ServerDefaults = {
    maxPacketSize: c.count(raw, 'maxPacketSize', '', SERVER_DEFAULTS.maxPacketSize),
    recvBufferSize: c.count(raw, 'recvBufferSize', '', SERVER_DEFAULTS.recvBufferSize),
    udpReader: c.oneOf(raw, 'udpReader', '', SERVER_DEFAULTS.udpReader, UDP_READERS),
  };
  const list = c.array(raw, 'servers', '', 'an array of server objects');
  if (raw['servers'] === undefined) {
    const single = readServer(c, raw, '', d);
    return single === null ? [] : [single];
  }
  for (const key of ['server', 'address', 'address_ipv6', 'port']) {
    if (raw[key] !== undefined) c.warn(key, 'ignored because servers is set (as in statsd)');
  }
  const servers: AnyServerConfig[] = [];
  const seen = new Map<string, string>();
  (list ?? []).forEach((entry, i) => {
    const path = join('servers', i);
    if (!isObject(entry)) {
      c.problem(path, `must be an object like { server: "udp", port: 8125 }, got ${describe(entry)}`);
      return;
    }
    const server = readServer(c, entry, path, d);
    if (server === null) return;
    const id = isZmqServer(server) ? `zmq ${server.bind}` : `${server.server} ${server.address}:${server.port}`;
    // Port 0 picks a free port; a bad bind ('') was reported already.
    const unique = isZmqServer(server) ? server.bind !== '' && zmqPort(server.bind) !== 0 : server.port !== 0;
    const first = seen.get(id);
    if (first !== undefined && unique) c.problem(path, `listens on the same ${id} as ${first}`);
    seen.set(id, path);
    servers.push(server);
  });
  return servers;
}

export function readPercentThreshold(c: Checker, raw: Raw, fallback: ReadonlyArray<number>): ReadonlyArray<number> {
  const value = raw['percentThreshold'];
  if (value === undefined) return fallback;
  const what = 'a number or an array of numbers, each non-zero and between -100 and 100';
  const valid = (p: unknown): p is number => typeof p === 'number' && Number.isFinite(p) && p !== 0 && Math.abs(p) <= 100;
  if (!Array.isArray(value)) {
    if (valid(value)) return [value];
    c.problem('percentThreshold', `must be ${what}, got ${describe(value)}`);
    return fallback;
  }
  const out: number[] = [];
  value.forEach((p: unknown, i) => {
    if (valid(p)) out.push(p);
    else c.problem(join('percentThreshold', i), `must be a non-zero number between -100 and 100, got ${describe(p)}`);
  });
  return out;
}

function readBins(c: Checker, bins: ReadonlyArray<unknown>, path: string): Array<number | 'inf'> {
  const out: Array<number | 'inf'> = [];
  let last = -Infinity;
  bins.forEach((bin, i) => {
    const at = join(path, i);
    if (bin === 'inf') {
      if (i !== bins.length - 1) c.problem(at, "'inf' must be the last bin");
      out.push(bin);
    } else if (typeof bin === 'number' && Number.isFinite(bin)) {
      if (bin <= last) c.problem(at, `bins must be in ascending order, got ${bin} after ${last}`);
      last = bin;
      out.push(bin);
    } else {
      c.problem(at, `must be a number or 'inf', got ${describe(bin)}`);
    }
  });
  return out;
}

export function readHistogram(c: Checker, raw: Raw): ReadonlyArray<HistogramConfig> {
  const list = c.array(raw, 'histogram', '', "an array of { metric, bins } objects");
  const out: HistogramConfig[] = [];
  (list ?? []).forEach((entry, i) => {
    const path = join('histogram', i);
    if (!isObject(entry)) {
      c.problem(path, `must be an object like { metric: "render", bins: [0.1, 1, 'inf'] }, got ${describe(entry)}`);
      return;
    }
    c.keys(entry, path, HISTOGRAM_KEYS);
    if (typeof entry['metric'] !== 'string') c.problem(join(path, 'metric'), `must be a string, got ${describe(entry['metric'])}`);
    const bins = entry['bins'];
    if (!Array.isArray(bins)) c.problem(join(path, 'bins'), `must be an array of numbers and 'inf', got ${describe(bins)}`);
    const metric = typeof entry['metric'] === 'string' ? entry['metric'] : '';
    out.push({ metric, bins: Array.isArray(bins) ? readBins(c, bins, join(path, 'bins')) : [] });
  });
  return out;
}

export function readTimerMetrics(c: Checker, raw: Raw): ReadonlyArray<string> {
  const list = c.array(raw, 'calculatedTimerMetrics', '', 'an array of timer metric names');
  const out: string[] = [];
  (list ?? []).forEach((name, i) => {
    if (typeof name === 'string' && TIMER_METRICS.includes(name)) {
      out.push(name);
      return;
    }
    const hint = typeof name === 'string' ? suggest(name, TIMER_METRICS) : null;
    c.problem(join('calculatedTimerMetrics', i), `unknown timer metric ${describe(name)}${hint === null ? '' : ` (did you mean ${hint}?)`}; `
      + `expected one of ${TIMER_METRICS.join(', ')}`);
  });
  return out;
}

/** Backend names other than graphite and console (their settings' keys are not typos). */
export function otherBackends(raw: Raw): ReadonlyArray<string> {
  const list = raw['backends'];
  if (!Array.isArray(list)) return [];
  return list.filter((name): name is string => typeof name === 'string' && !GRAPHITE_BACKEND.test(name) && !CONSOLE_BACKEND.test(name));
}

/** `backends`: the ones tallyd has (graphite, console, in statsd's spellings too); the others are ignored with a warning. */
export function checkBackends(c: Checker, raw: Raw): ReadonlyArray<BackendName> {
  const list = c.array(raw, 'backends', '', 'an array of backend names');
  if (list === null) return ['graphite'];
  const backends = new Set<BackendName>();
  list.forEach((name, i) => {
    if (typeof name !== 'string') c.problem(join('backends', i), `must be a string, got ${describe(name)}`);
    else if (GRAPHITE_BACKEND.test(name)) backends.add('graphite');
    else if (CONSOLE_BACKEND.test(name)) backends.add('console');
  });
  for (const name of otherBackends(raw)) c.warn('backends', `backend ${describe(name)} is not supported by tallyd and is ignored (graphite and console are)`);
  return [...backends];
}

/** statsd forces gaugesMaxTTL to 1 unless it is an integer > 1; a non-number is an error here. */
export function readGaugesMaxTTL(c: Checker, raw: Raw): number {
  const ttl = raw['gaugesMaxTTL'];
  if (ttl === undefined) return 1;
  if (typeof ttl !== 'number' || Number.isNaN(ttl)) {
    c.problem('gaugesMaxTTL', `must be an integer number of flushes, got ${describe(ttl)}`);
    return 1;
  }
  if (Number.isInteger(ttl) && ttl > 1) return ttl;
  if (ttl !== 1) c.warn('gaugesMaxTTL', `${describe(ttl)} is not an integer > 1, so 1 is used (as in statsd)`);
  return 1;
}
