/**
 * Default values: Etsy statsd 0.9's (stats.js, backends/graphite.js,
 * servers/*.js) for every statsd key, then tallyd's own. A key left out of
 * the config file resolves to the value here.
 */

import type { Config, GraphiteConfig, HttpConfig, LogConfig, ServerConfig } from './types.js';

/** Largest datagram (UDP) or line (TCP) accepted, in bytes: the largest UDP payload. */
export const DEFAULT_MAX_PACKET_SIZE = 65536;

/**
 * UDP receive buffer asked of the kernel: 8 MiB holds ~10,000 small datagrams,
 * so a GC or flush pause of tens of ms drops nothing (the Linux default,
 * 208 KiB, holds ~256: ~6 ms at 40k datagrams/s).
 */
export const DEFAULT_RECV_BUFFER_SIZE = 8 * 1024 * 1024;

/** ZeroMQ: largest message accepted, as received and once inflated (1 MiB; a status message is ~2 KiB). */
export const DEFAULT_ZMQ_MAX_MESSAGE_SIZE = 1024 * 1024;

/** ZeroMQ: ZMQ_RCVHWM in messages; at ~20 items a message, 10,000 hold ~200,000 samples of backlog. */
export const DEFAULT_ZMQ_HIGH_WATER_MARK = 10000;

/** ZeroMQ: where a zmq server binds when `bind` is not given (the port of the original pipeline). */
export const DEFAULT_ZMQ_BIND = 'tcp://0.0.0.0:5555';

/** statsd: `server.bind(config.port || 8125, config.address || undefined)`, udp4 unless address_ipv6. */
export const DEFAULT_SERVER: ServerConfig = Object.freeze({
  server: 'udp',
  address: '0.0.0.0',
  port: 8125,
  address_ipv6: false,
  maxPacketSize: DEFAULT_MAX_PACKET_SIZE,
  recvBufferSize: DEFAULT_RECV_BUFFER_SIZE,
  udpReader: 'auto',
});

/** Bind address when none is given: all interfaces, IPv6 ones for an address_ipv6 server. */
export function defaultAddress(ipv6: boolean): string {
  return ipv6 ? '::' : '0.0.0.0';
}

export const DEFAULT_GRAPHITE: GraphiteConfig = Object.freeze({
  legacyNamespace: true,
  globalPrefix: 'stats',
  prefixCounter: 'counters',
  prefixTimer: 'timers',
  prefixGauge: 'gauges',
  prefixSet: 'sets',
  globalSuffix: '',
});

export const LOG_LEVELS: ReadonlyArray<LogConfig['level']> = Object.freeze([
  'fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent',
]);

/** statsd's calculatedTimerMetrics vocabulary (`*_percent` selects the per-percentile ones). */
export const TIMER_METRICS: ReadonlyArray<string> = Object.freeze([
  'count', 'count_ps', 'lower', 'upper', 'mean', 'sum', 'sum_squares', 'std', 'median', 'histogram',
  'count_percent', 'mean_percent', 'upper_percent', 'lower_percent', 'sum_percent', 'sum_squares_percent',
]);

/**
 * batchInterval when the config does not set it: half of flushInterval, at
 * most 200 ms (at least 1 ms), so any flushInterval statsd accepts (100 ms,
 * say) works without a tallyd-only key.
 */
export function defaultBatchInterval(flushIntervalMs: number): number {
  return Math.max(1, Math.min(200, Math.floor(flushIntervalMs / 2)));
}

/** What each key of an `http` section defaults to (the section itself is off when absent). */
export const DEFAULT_HTTP: HttpConfig = Object.freeze({
  port: 8127,
  address: '127.0.0.1',
  historyMaxBytes: 32 * 1024 * 1024,
  historyPeriods: 360,
});

/** The resolved config of an empty file. */
export const DEFAULTS: Config = Object.freeze({
  source: null,

  servers: Object.freeze([DEFAULT_SERVER]),
  mgmt_address: '0.0.0.0',
  mgmt_port: 8126,
  mgmtMaxConcurrent: 4,
  mgmtAllowRemoteChanges: false,
  maxConnections: 1000,
  tcpIdleTimeout: 60000,

  // statsd: no graphiteHost = metrics are computed but not sent anywhere.
  graphiteHost: null,
  graphitePort: 2003,
  graphiteProtocol: 'text',
  graphitePicklePort: 2004,
  backends: Object.freeze(['graphite'] as const),
  console: Object.freeze({ prettyprint: false }),
  graphite: DEFAULT_GRAPHITE,

  flushInterval: 10000,
  percentThreshold: Object.freeze([90]),
  histogram: Object.freeze([]),
  calculatedTimerMetrics: Object.freeze([]),
  deleteIdleStats: false,
  deleteCounters: false,
  deleteTimers: false,
  deleteGauges: false,
  deleteSets: false,
  gaugesMaxTTL: 1,
  prefixStats: 'statsd',
  keyNameSanitize: true,
  flush_counts: true,
  healthStatus: 'up',
  dumpMessages: false,

  strictConfig: false,
  redis: Object.freeze({ url: 'redis://127.0.0.1:6379', keyPrefix: 'tallyd:', commandTimeout: 10000 }),
  batchInterval: 200,
  leaseTtl: 5000,
  stopTimeout: 10000,
  workers: 1,
  flushNice: 10,
  outboxMaxBytes: 256 * 1024 * 1024,
  carbonWriteTimeout: 10000,
  maxPendingBatches: 1000,
  maxBatchNames: 20000,
  log: Object.freeze({ level: 'info' }),
  http: null,
});
