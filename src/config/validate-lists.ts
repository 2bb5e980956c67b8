/**
 * The list-shaped statsd settings: servers (with statsd's fallback to the
 * top-level server keys, and tallyd's ZeroMQ entries), percentThreshold,
 * histogram, calculatedTimerMetrics and backends.
 */

import { type Checker, isObject, join, type Raw } from './checker.js';
import {
  DEFAULT_MAX_PACKET_SIZE, DEFAULT_RECV_BUFFER_SIZE, DEFAULT_ZMQ_BIND, DEFAULT_ZMQ_HIGH_WATER_MARK, DEFAULT_ZMQ_MAX_MESSAGE_SIZE,
  DEFAULTS, defaultAddress, TIMER_METRICS,
} from './defaults.js';
import { describe, HISTOGRAM_KEYS, SERVER_KEYS, suggest, UNIMPLEMENTED_SERVER, ZMQ_SERVER_KEYS } from './keys.js';
import { type AnyServerConfig, type BackendName, type HistogramConfig, isZmqServer, type ServerKind, type UdpReaderKind, type ZmqServerConfig } from './types.js';

const UDP_READERS: ReadonlyArray<UdpReaderKind> = ['auto', 'native', 'dgram'];

/** Settings a server entry inherits from the top level of the file (tallyd's, as statsd has none). */
interface ServerDefaults {
  packetSize: number;
  recvBuffer: number;
  udpReader: UdpReaderKind;
}

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
  const address_ipv6 = c.bool(entry, 'address_ipv6', path, false);
  return {
    server,
    address: c.str(entry, 'address', path, defaultAddress(address_ipv6), true),
    port: c.port(entry, 'port', path, 8125),
    address_ipv6,
    maxPacketSize: c.count(entry, 'maxPacketSize', path, d.packetSize),
    recvBufferSize: c.count(entry, 'recvBufferSize', path, d.recvBuffer),
    udpReader: c.oneOf(entry, 'udpReader', path, d.udpReader, UDP_READERS),
  };
}

/** `tcp://host:port` (host `*`, a name, an IPv4 or a bracketed IPv6 address; port 0..65535 or `*`) or `ipc://path`. */
const ZMQ_TCP = /^tcp:\/\/(\*|\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9_.-]+):(\*|\d{1,5})$/;
const ZMQ_IPC = /^ipc:\/\/\S+$/;

/** The port of a tcp:// endpoint ('*' reads as 0), or null for ipc://. */
function zmqPort(bind: string): number | null {
  const m = ZMQ_TCP.exec(bind);
  if (m === null) return null;
  return m[2] === '*' ? 0 : Number(m[2]);
}

function readZmqServer(c: Checker, entry: Raw, path: string): ZmqServerConfig {
  c.keys(entry, path, ZMQ_SERVER_KEYS, UNIMPLEMENTED_SERVER);
  // '' (never a valid endpoint) when the value is bad, so it is not compared with the other servers'.
  let bind = c.str(entry, 'bind', path, '', true);
  if (entry['bind'] === undefined) bind = DEFAULT_ZMQ_BIND;
  else if (bind !== '' && !ZMQ_IPC.test(bind) && (zmqPort(bind) ?? 65536) > 65535) {
    c.problem(join(path, 'bind'), `must be "tcp://host:port" (port 0..65535 or *) or "ipc:///path", got ${describe(bind)}`);
    bind = '';
  }
  let prefix = c.str(entry, 'prefix', path, '');
  if (/[\s;]/.test(prefix)) {
    c.problem(join(path, 'prefix'), `must not contain whitespace or ';' (it is prepended to metric names), got ${describe(prefix)}`);
    prefix = '';
  }
  return {
    server: 'zmq',
    bind,
    type: c.oneOf(entry, 'type', path, 'sub', ['sub', 'pull']),
    mode: c.oneOf(entry, 'mode', path, 'aggregate', ['aggregate', 'passthrough']),
    prefix,
    maxMessageSize: c.count(entry, 'maxMessageSize', path, DEFAULT_ZMQ_MAX_MESSAGE_SIZE),
    highWaterMark: c.count(entry, 'highWaterMark', path, DEFAULT_ZMQ_HIGH_WATER_MARK),
  };
}

export function readServers(c: Checker, raw: Raw): ReadonlyArray<AnyServerConfig> {
  const d: ServerDefaults = {
    packetSize: c.count(raw, 'maxPacketSize', '', DEFAULT_MAX_PACKET_SIZE),
    recvBuffer: c.count(raw, 'recvBufferSize', '', DEFAULT_RECV_BUFFER_SIZE),
    udpReader: c.oneOf(raw, 'udpReader', '', 'auto', UDP_READERS),
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

export function readPercentThreshold(c: Checker, raw: Raw): ReadonlyArray<number> {
  const value = raw['percentThreshold'];
  if (value === undefined) return DEFAULTS.percentThreshold;
  const what = 'a number or an array of numbers, each non-zero and between -100 and 100';
  const valid = (p: unknown): p is number => typeof p === 'number' && Number.isFinite(p) && p !== 0 && Math.abs(p) <= 100;
  if (!Array.isArray(value)) {
    if (valid(value)) return [value];
    c.problem('percentThreshold', `must be ${what}, got ${describe(value)}`);
    return DEFAULTS.percentThreshold;
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

/**
 * Checks `backends`: the ones tallyd has (graphite, console, in statsd's
 * spellings too), and the others, which are ignored with a warning.
 */
export function checkBackends(c: Checker, raw: Raw): { backends: ReadonlyArray<BackendName>; others: ReadonlyArray<string> } {
  const list = c.array(raw, 'backends', '', 'an array of backend names');
  if (list === null) return { backends: DEFAULTS.backends, others: [] };
  const others: string[] = [];
  const backends = new Set<BackendName>();
  list.forEach((name, i) => {
    if (typeof name !== 'string') c.problem(join('backends', i), `must be a string, got ${describe(name)}`);
    else if (GRAPHITE_BACKEND.test(name)) backends.add('graphite');
    else if (CONSOLE_BACKEND.test(name)) backends.add('console');
    else others.push(name);
  });
  for (const name of others) c.warn('backends', `backend ${describe(name)} is not supported by tallyd and is ignored (graphite and console are)`);
  return { backends: [...backends], others };
}
