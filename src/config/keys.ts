/**
 * Every key tallyd reads, and the Etsy statsd keys it knows but does not
 * implement (those load with a warning, so a statsd file works as it is).
 * Any other key warns ("unknown key, ignored"), with a "did you mean" hint
 * for a likely typo, as statsd ignores keys it does not read; it is an error
 * only with `strictConfig: true`.
 */

/** Top-level keys that are validated and used. */
export const TOP_LEVEL_KEYS: ReadonlyArray<string> = [
  // statsd: the single server used when `servers` is absent
  'server', 'address', 'address_ipv6', 'port', 'maxPacketSize', 'recvBufferSize', 'udpReader',
  'servers', 'mgmt_address', 'mgmt_port',
  'graphiteHost', 'graphitePort', 'graphiteProtocol', 'graphitePicklePort', 'graphite', 'backends', 'console',
  'flushInterval', 'percentThreshold', 'histogram', 'calculatedTimerMetrics',
  'deleteIdleStats', 'deleteCounters', 'deleteTimers', 'deleteGauges', 'deleteSets', 'gaugesMaxTTL',
  'prefixStats', 'keyNameSanitize', 'flush_counts', 'healthStatus', 'dumpMessages',
  // tallyd's own
  'mgmtMaxConcurrent', 'mgmtAllowRemoteChanges', 'maxConnections', 'tcpIdleTimeout',
  'strictConfig', 'redis', 'batchInterval', 'leaseTtl', 'stopTimeout', 'outboxMaxBytes', 'carbonWriteTimeout', 'maxPendingBatches', 'workers', 'flushNice', 'maxBatchNames', 'log',
  'http',
];

/** statsd keys tallyd accepts and ignores, with why. `debug: false` and `automaticConfigReload: false` are silent. */
export const UNIMPLEMENTED_TOP_LEVEL: Readonly<Record<string, string>> = {
  outboxMaxChunks: 'replaced by outboxMaxBytes (the outbox bound is in bytes now); ignored',
  keyFlush: 'statsd\'s frequent-keys log is not implemented; ignored',
  automaticConfigReload: 'tallyd reads its config once at start; restart it to apply changes',
  debug: 'not implemented; ignored (set log.level to "debug" instead)',
  repeater: 'repeating packets to other statsd servers is not implemented; ignored',
  repeaterProtocol: 'repeating packets to other statsd servers is not implemented; ignored',
  title: 'tallyd does not change its process title; ignored',
  socket: 'unix domain sockets are not implemented; ignored',
  socket_mod: 'unix domain sockets are not implemented; ignored',
};

export const SERVER_KEYS: ReadonlyArray<string> = ['server', 'address', 'address_ipv6', 'port', 'maxPacketSize', 'recvBufferSize', 'udpReader'];

/** Keys of a `{ server: "zmq" }` entry of `servers`. */
export const ZMQ_SERVER_KEYS: ReadonlyArray<string> = ['server', 'bind', 'type', 'mode', 'prefix', 'maxMessageSize', 'highWaterMark'];

export const UNIMPLEMENTED_SERVER: Readonly<Record<string, string>> = {
  socket: 'unix domain sockets are not implemented; ignored',
  socket_mod: 'unix domain sockets are not implemented; ignored',
};

export const GRAPHITE_KEYS: ReadonlyArray<string> = [
  'legacyNamespace', 'globalPrefix', 'prefixCounter', 'prefixTimer', 'prefixGauge', 'prefixSet', 'globalSuffix',
];

export const REDIS_KEYS: ReadonlyArray<string> = ['url', 'keyPrefix', 'commandTimeout'];

/** tallyd's HTTP server (`http: { port, address, ... }`; absent: no HTTP listener). */
export const HTTP_KEYS: ReadonlyArray<string> = ['port', 'address', 'historyMaxBytes', 'historyPeriods'];

export const LOG_KEYS: ReadonlyArray<string> = ['level'];

/** statsd's `log: { backend, application, level }`: backend and application are not used. */
export const UNIMPLEMENTED_LOG: Readonly<Record<string, string>> = {
  backend: 'tallyd logs JSON lines to stdout (pino); statsd\'s log backend is ignored',
  application: 'statsd\'s syslog application name is ignored',
};

/** statsd's console backend settings (`console: { prettyprint }`). */
export const CONSOLE_KEYS: ReadonlyArray<string> = ['prettyprint'];

export const HISTOGRAM_KEYS: ReadonlyArray<string> = ['metric', 'bins'];

/** statsd's syslog level names, mapped to the nearest pino level. */
export const SYSLOG_LEVELS: Readonly<Record<string, 'fatal' | 'error' | 'warn' | 'info' | 'debug'>> = {
  LOG_EMERG: 'fatal', LOG_ALERT: 'fatal', LOG_CRIT: 'fatal', LOG_ERR: 'error',
  LOG_WARNING: 'warn', LOG_NOTICE: 'info', LOG_INFO: 'info', LOG_DEBUG: 'debug',
};

function distance(a: string, b: string): number {
  let prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const row = [i];
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      row.push(Math.min((prev[j] ?? 0) + 1, (row[j - 1] ?? 0) + 1, (prev[j - 1] ?? 0) + cost));
    }
    prev = row;
  }
  return prev[b.length] ?? 0;
}

/** The closest candidate to a mistyped key, if it is close enough to be a typo. */
export function suggest(key: string, candidates: Iterable<string>): string | null {
  const wanted = key.toLowerCase().replace(/[-_]/g, '');
  let best: string | null = null;
  let bestDistance = Infinity;
  for (const candidate of candidates) {
    const d = distance(wanted, candidate.toLowerCase().replace(/[-_]/g, ''));
    if (d < bestDistance) {
      best = candidate;
      bestDistance = d;
    }
  }
  const limit = Math.max(1, Math.min(3, Math.floor(wanted.length / 3)));
  return bestDistance <= limit ? best : null;
}

/** A value as quoted in an error: strings in JSON quotes, long values cut. */
export function describe(value: unknown): string {
  if (value === undefined) return 'undefined';
  let text: string;
  try {
    text = typeof value === 'number' || typeof value === 'bigint' ? String(value) : JSON.stringify(value) ?? String(value);
  } catch {
    text = String(value);
  }
  return text.length > 60 ? `${text.slice(0, 57)}...` : text;
}
