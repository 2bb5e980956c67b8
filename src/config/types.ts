/**
 * The resolved, validated configuration: the one source of the Config type.
 * Field names follow Etsy statsd's config keys where statsd has them, so a
 * statsd config file maps onto this shape without renaming. tallyd's own
 * settings live in their own sections (`redis`, `batchInterval`, `log`).
 */

export type ServerKind = 'udp' | 'tcp';

/**
 * How a UDP server reads its socket: 'native' with the optional native
 * reader (recvmmsg, many datagrams per call into JavaScript; Linux, built by
 * npm install), 'dgram' with node:dgram, 'auto' native when it is there.
 */
export type UdpReaderKind = 'auto' | 'native' | 'dgram';

export interface ServerConfig {
  /** 'udp' or 'tcp' (statsd's './servers/udp' and './servers/tcp' spellings are normalised). */
  readonly server: ServerKind;
  /** Bind address; statsd's default is all interfaces. */
  readonly address: string;
  readonly port: number;
  /** statsd's `address_ipv6`: bind a udp6 socket. */
  readonly address_ipv6: boolean;
  /** Largest accepted datagram / TCP line in bytes; longer ones are counted and dropped. */
  readonly maxPacketSize: number;
  /** UDP: SO_RCVBUF to ask the kernel for, in bytes (it may clamp it to net.core.rmem_max). */
  readonly recvBufferSize: number;
  /** UDP: which socket reader (see UdpReaderKind). */
  readonly udpReader: UdpReaderKind;
}

export type ZmqSocketType = 'sub' | 'pull';
export type ZmqMode = 'aggregate' | 'passthrough';

/** A ZeroMQ socket receiving status messages (src/ingest/zmq.ts); tallyd binds, publishers connect. */
export interface ZmqServerConfig {
  readonly server: 'zmq';
  /** `tcp://host:port` (port 0 or `*`: any free port) or `ipc:///path`. */
  readonly bind: string;
  /** 'sub': bound SUB for PUB publishers (drops at the high-water mark); 'pull': bound PULL for PUSH publishers (backpressure). */
  readonly type: ZmqSocketType;
  /** 'aggregate': items join the statsd aggregation; 'passthrough': `<prefix><name> <value> <time>` straight to the outbox. */
  readonly mode: ZmqMode;
  /** Prepended as it is to every name received on this socket. */
  readonly prefix: string;
  /** Largest accepted message in bytes, as received and once inflated; larger ones are counted and dropped. */
  readonly maxMessageSize: number;
  /** ZMQ_RCVHWM: messages queued in libzmq before SUB drops or PUSH publishers block. */
  readonly highWaterMark: number;
}

export type AnyServerConfig = ServerConfig | ZmqServerConfig;

export function isZmqServer(server: AnyServerConfig): server is ZmqServerConfig {
  return server.server === 'zmq';
}

export interface HistogramConfig {
  /** Substring matched against a timer's name (statsd: `key.indexOf(metric) > -1`), first match wins. */
  readonly metric: string;
  /** Upper bounds (exclusive) of the bins, ascending; 'inf' for the last open bin. */
  readonly bins: ReadonlyArray<number | 'inf'>;
}

export interface GraphiteConfig {
  readonly legacyNamespace: boolean;
  readonly globalPrefix: string;
  readonly prefixCounter: string;
  readonly prefixTimer: string;
  readonly prefixGauge: string;
  readonly prefixSet: string;
  /** Raw suffix as configured ('' when unset); encode adds the '.' like statsd. */
  readonly globalSuffix: string;
}

export interface RedisConfig {
  readonly url: string;
  /** Prefix of every key; the layout version and the hash-tagged shard follow it. */
  readonly keyPrefix: string;
  /** ms without a reply after which a command fails (ioredis commandTimeout); counted as redis_timeouts. */
  readonly commandTimeout: number;
}

export interface LogConfig {
  readonly level: 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace' | 'silent';
}

/** The HTTP server (src/http/server.ts): /healthz, /readyz, /metrics, the JSON API and the status page. */
export interface HttpConfig {
  readonly port: number;
  readonly address: string;
  /** Bound of the Redis history of committed periods behind /api/names and /api/series, in bytes of Graphite lines. */
  readonly historyMaxBytes: number;
  /** Most committed periods kept in that history. */
  readonly historyPeriods: number;
}

export type BackendName = 'graphite' | 'console';

export interface ConsoleBackendConfig {
  /** util.inspect with colors and depth 5 instead of console.log's default. */
  readonly prettyprint: boolean;
}

export interface Config {
  /** Path of the file the config came from, or null for defaults only. */
  readonly source: string | null;

  /** statsd servers (udp, tcp) and ZeroMQ sockets, in file order. */
  readonly servers: ReadonlyArray<AnyServerConfig>;
  readonly mgmt_address: string;
  readonly mgmt_port: number;
  /** Console commands running at once in this process; more are answered with an error and counted. */
  readonly mgmtMaxConcurrent: number;
  /** Accept the console's state-changing commands (del*, health up|down) from non-loopback addresses. */
  readonly mgmtAllowRemoteChanges: boolean;
  /** Open connections per TCP server; more are closed at once and counted (tcp_connections_refused). */
  readonly maxConnections: number;
  /** ms a TCP connection may send nothing before it is closed and counted (tcp_idle_closed). */
  readonly tcpIdleTimeout: number;

  readonly graphiteHost: string | null;
  readonly graphitePort: number;
  /** statsd's graphiteProtocol: plaintext lines to graphitePort, or carbon's pickle framing to graphitePicklePort. */
  readonly graphiteProtocol: 'text' | 'pickle';
  readonly graphitePicklePort: number;
  /** statsd's backends, resolved: 'graphite' (when graphiteHost is set) and/or 'console'. */
  readonly backends: ReadonlyArray<BackendName>;
  /** statsd's console backend settings. */
  readonly console: ConsoleBackendConfig;
  readonly graphite: GraphiteConfig;

  readonly flushInterval: number;
  readonly percentThreshold: ReadonlyArray<number>;
  readonly histogram: ReadonlyArray<HistogramConfig>;
  /** statsd's calculatedTimerMetrics; empty means "all". */
  readonly calculatedTimerMetrics: ReadonlyArray<string>;
  readonly deleteIdleStats: boolean;
  readonly deleteCounters: boolean;
  readonly deleteTimers: boolean;
  readonly deleteGauges: boolean;
  readonly deleteSets: boolean;
  /** Flushes a gauge survives without updates when deleteGauges is on (statsd forces < 2 to 1). */
  readonly gaugesMaxTTL: number;
  readonly prefixStats: string;
  readonly keyNameSanitize: boolean;
  /** statsd's flush_counts: also emit stats_counts.* / <counter>.count. */
  readonly flush_counts: boolean;
  readonly healthStatus: 'up' | 'down';
  /** statsd's dumpMessages: log every received line (debug aid, slow). */
  readonly dumpMessages: boolean;

  /** An unknown key is an error instead of a warning (statsd ignores keys it does not read). */
  readonly strictConfig: boolean;
  readonly redis: RedisConfig;
  /** Milliseconds between merges of the local batch into Redis; unset: defaultBatchInterval(flushInterval). */
  readonly batchInterval: number;
  /** Lease time-to-live in ms for the flushing leader. */
  readonly leaseTtl: number;
  /**
   * A clean stop (SIGTERM/SIGINT) takes at most this long, ms: merge the last
   * batches, close and commit what is due, drain the outbox, release the lease.
   */
  readonly stopTimeout: number;
  /**
   * Bound of the Redis outbox in bytes (sum of its entries' line bytes) while
   * Carbon is unreachable: beyond it the oldest entries not being written are
   * dropped and counted (outbox_dropped lines, outbox_dropped_bytes).
   */
  readonly outboxMaxBytes: number;
  /** ms a Carbon delivery may go without progress before it is dropped, counted (carbon_errors) and written again. */
  readonly carbonWriteTimeout: number;
  /** Largest number of batches kept in memory while Redis is unreachable. */
  readonly maxPendingBatches: number;
  /**
   * Distinct names (plus set members and passthrough lines) at which a batch
   * is merged before batchInterval ends: Redis runs nothing else during a
   * merge, so this bounds how long one merge holds it.
   */
  readonly maxBatchNames: number;
  /**
   * Ingest processes (node:cluster): workers share the UDP/TCP ports and the
   * console, each merges its own batches, one holds the flush lease; ZeroMQ
   * sockets bind in the first worker only. 1 runs everything in one process.
   */
  readonly workers: number;
  /**
   * Niceness (0..19) of the flush thread, so that when the cores are busy the
   * ingest thread wins them and a big flush takes longer instead of the
   * socket buffer overflowing. 0 leaves it at the process's priority.
   */
  readonly flushNice: number;
  readonly log: LogConfig;
  /** The HTTP server; null (the key absent) runs none, as statsd has none. */
  readonly http: HttpConfig | null;
}
