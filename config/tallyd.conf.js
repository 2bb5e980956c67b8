/*
tallyd configuration: `npm start` runs `node dist/main.js config/tallyd.conf.js`.

The syntax is Etsy statsd's: a JavaScript object literal, so a statsd config
file works here as it is and this file works with statsd. tallyd reads it as
JSON5 (comments, unquoted keys, single quotes and trailing commas are fine)
and never runs it: values must be plain strings, numbers, booleans, arrays
and objects, not expressions. The parentheses around the object are optional;
they only make the file valid JavaScript for editors and linters (statsd
evaluates `config = ` + the file, which accepts them too). The same settings
may also be written as JSON (.json) or YAML (.yaml / .yml).

Precedence: built-in defaults < this file < environment (TALLYD_REDIS_URL or
REDIS_URL, TALLYD_REDIS_KEY_PREFIX, TALLYD_REDIS_PASSWORD,
TALLYD_FLUSH_INTERVAL, TALLYD_LOG_LEVEL); the command line names the file
and sets no key. A key tallyd does not know loads with a warning
and is ignored, as statsd ignores keys it does not read ("unknown key,
ignored (did you mean ...?)" for a likely typo); with strictConfig: true it
is an error instead. statsd keys tallyd does not implement (keyFlush,
automaticConfigReload, debug, repeater, repeaterProtocol, title, socket,
socket_mod, log.backend, log.application, backends other than graphite and
console) and the retired outboxMaxChunks load with a warning and are
ignored (debug: false and automaticConfigReload: false without one). A
config file may be at most 1 MiB.
*/
// eslint-disable-next-line @typescript-eslint/no-unused-expressions -- statsd evaluates `config = ` + this file
({
  // ---- Listening ---------------------------------------------------------

  // Sockets that receive statsd lines (`name:value|type[|@rate][|#tags]`).
  // server: "udp" or "tcp" (statsd's "./servers/udp" / "./servers/tcp" work
  // too; missing means udp). address: bind address, "0.0.0.0" = every IPv4
  // interface. address_ipv6: bind an IPv6 socket (address defaults to "::").
  // port: 0 picks a free port. maxPacketSize: largest UDP datagram / TCP line
  // in bytes; longer ones are counted and dropped [65536]. recvBufferSize:
  // the UDP receive buffer asked of the kernel, in bytes [8388608]; Linux
  // clamps it to net.core.rmem_max (tallyd warns once when it does).
  // udpReader: how a UDP socket is read: "native" with tallyd's native reader
  // (recvmmsg, up to 64 datagrams per call; under a steady stream it reads
  // again 1 ms after a read that emptied the queue, rather than waking per
  // datagram, when the kernel granted at least 512 KiB of receive buffer;
  // Linux, built by npm install when a C compiler is there; the start fails
  // without it), "dgram" with Node's node:dgram (a call into JavaScript per
  // datagram: several times the CPU per datagram), "auto" native when it was
  // built, else dgram ["auto"].
  // Without `servers`, statsd's top-level port / address / address_ipv6 /
  // server / maxPacketSize keys describe a single server; maxPacketSize,
  // recvBufferSize and udpReader at the top level are every server's default.
  //
  // server: "zmq" entries receive ZeroMQ status messages: each message's
  // last frame (a leading topic frame is ignored), zlib-compressed or plain,
  // holding a JSON array of {name, value, time} items, one such object, or
  // statsd lines. tallyd binds; publishers connect. Keys:
  //   bind: "tcp://host:port" (port 0 or * = any free port) or "ipc:///path" [tcp://0.0.0.0:5555]
  //   type: "sub" for PUB publishers (they drop messages at their
  //         high-water mark, never block) or "pull" for PUSH publishers
  //         (they block when tallyd falls behind: backpressure) ["sub"]
  //   mode: "aggregate" folds items into the statsd aggregation (an item's
  //         type: c, g, ms, h, d or s; default g); "passthrough" writes
  //         `<prefix><name> <value> <time>` to Carbon with the item's own
  //         timestamp, without aggregating ["aggregate"]
  //   prefix: prepended as it is to every name from this socket, e.g. "servers." [""]
  //   maxMessageSize: largest frame in bytes, as received (libzmq closes the
  //         publisher's connection: statsd.zmq_disconnects) and once inflated
  //         (statsd.zmq_oversized, dropped) [1048576]
  //   highWaterMark: messages libzmq queues for tallyd (ZMQ_RCVHWM) [10000]
  servers: [
    { server: "udp", address: "0.0.0.0", port: 8125, address_ipv6: false, maxPacketSize: 65536, recvBufferSize: 8388608, udpReader: "auto" },
    { server: "tcp", address: "0.0.0.0", port: 8125, address_ipv6: false, maxPacketSize: 65536 },
    { server: "zmq", bind: "tcp://0.0.0.0:5555", type: "sub", mode: "aggregate", prefix: "", maxMessageSize: 1048576, highWaterMark: 10000 },
  ],

  // statsd's management console (help, stats, counters, health, ...) [0.0.0.0, 8126].
  mgmt_address: "0.0.0.0",
  mgmt_port: 8126,
  // Console listings and stats running at once; more are answered with an
  // ERROR line and counted (tallyd.mgmt_refused in `stats`); help, config,
  // health and quit always answer [4].
  mgmtMaxConcurrent: 4,
  // ms a console answer may wait for the client to read it; then the
  // connection is closed, so a client that never reads holds no slot [10000].
  mgmtWriteTimeout: 10000,
  // delcounters / deltimers / delgauges / health up|down are accepted only
  // from loopback (127.0.0.0/8, ::1) unless this is true; reads (stats,
  // counters, ...) are answered for anyone, as statsd does [false].
  mgmtAllowRemoteChanges: false,

  // TCP servers: open connections per server; more are closed at once and
  // counted (statsd.tcp_connections_refused) [1000].
  maxConnections: 1000,
  // ms a TCP connection may send nothing before it is closed and counted
  // (statsd.tcp_idle_closed); an unterminated last line is parsed [60000].
  tcpIdleTimeout: 60000,

  // Reported by the console's `health` command until changed there: "up" or "down".
  healthStatus: "up",

  // ---- Graphite output ---------------------------------------------------

  // Carbon. Without graphiteHost, aggregates are computed and not sent, as
  // statsd does. graphiteProtocol "text" writes plaintext lines to
  // graphitePort; "pickle" writes carbon's pickle frames (4-byte length +
  // pickled list of (name, (timestamp, value))) to graphitePicklePort. Either
  // way lines wait in the Redis outbox and leave it only once Carbon has
  // read them to the end (each delivery is a connection that tallyd
  // half-closes and Carbon closes cleanly); any loss is written again.
  graphiteHost: "127.0.0.1",
  graphitePort: 2003,
  graphiteProtocol: "text",
  graphitePicklePort: 2004,
  // ms a Carbon delivery may make no progress (a Carbon that accepts and
  // stops reading) before it is dropped, counted in carbon_errors and
  // written again.
  carbonWriteTimeout: 10000,

  // statsd backends: "graphite" and "console" (statsd's "./backends/graphite"
  // and "./backends/console" work too); others load with a warning. console
  // prints every flush to stdout like statsd's console backend (only the
  // flushing leader prints), so tallyd can be tried without Carbon.
  backends: ["./backends/graphite"],
  // The console backend's settings: prettyprint = util.inspect with colors.
  console: { prettyprint: false },

  // Metric names, exactly as statsd's graphite backend builds them.
  graphite: {
    // true: statsd's legacy names (stats.<counter>, stats_counts.<counter>,
    // stats.timers.<t>.*, stats.gauges.<g>, stats.sets.<s>.count, statsd.numStats).
    // false: the prefixes below are used.
    legacyNamespace: true,
    globalPrefix: "stats",      // first component of every name (non-legacy)
    prefixCounter: "counters",  // stats.counters.<name>.rate / .count
    prefixTimer: "timers",      // stats.timers.<name>.mean, .upper_90, ...
    prefixGauge: "gauges",      // stats.gauges.<name>
    prefixSet: "sets",          // stats.sets.<name>.count
    globalSuffix: "",           // appended as ".<suffix>" to every name when not empty, e.g. a host name
  },

  // Prefix of tallyd's own metrics (statsd.bad_lines_seen, statsd.numStats, ...).
  prefixStats: "statsd",

  // ---- Aggregation -------------------------------------------------------

  // Length of one aggregation period in ms; flushes happen on wall-clock
  // multiples of it, so every tallyd node agrees on the boundaries.
  flushInterval: 10000,

  // Timer percentiles to compute: a number or a list; negative = top N%
  // (lower_N instead of upper_N). Each non-zero, between -100 and 100.
  percentThreshold: [90],

  // Timer histograms: first entry whose metric is a substring of the timer
  // name wins; bins are ascending exclusive upper bounds, 'inf' last.
  // An entry with bins: [] excludes the timers it matches.
  histogram: [
    // { metric: "render", bins: [0.01, 0.1, 1, 10, "inf"] },
  ],

  // Timer sub-metrics to send; [] sends all. Names: count, count_ps, lower,
  // upper, mean, sum, sum_squares, std, median, histogram, and the
  // per-percentile count_percent, mean_percent, upper_percent,
  // lower_percent, sum_percent, sum_squares_percent.
  calculatedTimerMetrics: [],

  // Idle metrics (no sample in a period): statsd sends 0 for counters,
  // timers and sets and repeats a gauge's last value. deleteIdleStats: true
  // stops all of that; each delete* below overrides it for one type.
  deleteIdleStats: false,
  // deleteCounters: false,
  // deleteTimers: false,
  // deleteSets: false,
  // deleteGauges: false,

  // With deleteGauges: flushes without an update before a gauge counts as
  // idle and is dropped (an integer > 1, anything else means 1).
  gaugesMaxTTL: 1,

  // Replace characters Graphite cannot store in names ('/' -> '-', spaces -> '_', others dropped).
  keyNameSanitize: true,

  // Also send counts (stats_counts.<name>, or <name>.count), not just rates.
  flush_counts: true,

  // Log every received line (info level; slow, a debugging aid).
  dumpMessages: false,

  // ---- tallyd: Redis state -----------------------------------------------

  redis: {
    // redis:// or rediss:// (TLS); user, password and db number go in the URL
    // (or the password in password below, not both).
    url: "redis://127.0.0.1:6379",
    // A Redis Cluster instead of url (not both): its seed nodes, "host:port".
    // nodes: ["10.0.0.1:7000", "10.0.0.2:7000", "10.0.0.3:7000"],
    // The password for every node of nodes (a Cluster with requirepass and
    // masterauth) or for url; TALLYD_REDIS_PASSWORD overrides it. Never
    // shown: --check, the console's config, logs and errors print ***.
    // password: "...",
    // An ACL user (Redis 6+) to authenticate as with that password; without
    // it, the password is the default user's (requirepass).
    // username: "tallyd",
    // Replicas that must confirm (WAIT) each merge before it counts;
    // default 1 with nodes, 0 without. 0: a master killed right after a merge
    // may lose it on failover (counts silently missing).
    // waitReplicas: 1,
    // ms a WAIT may block; an unconfirmed merge is kept and retried.
    // waitTimeout: 1000,
    // Prefix of every key; tallyd adds a layout version and a {shard} hash tag.
    keyPrefix: "tallyd:",
    // Logical shards the state is split into by a hash of each name: each
    // has its own keys, merge and flushing leader, so merging spreads over a
    // Redis Cluster's masters and flushing over the tallyd processes.
    // Recorded in Redis at first start; another value then refuses to start
    // (1 is the layout of tallyd before shards).
    shards: 16,
    // ms without a reply after which a Redis command fails: a Redis that
    // hangs without dropping the connection is noticed, logged and counted
    // (statsd.redis_timeouts), and the batch is retried.
    commandTimeout: 10000,
    // A private redis-server for a trial: "auto" starts one (loopback, a free
    // port, data in ~/.local/state/tallyd/trial-redis, stopped with tallyd)
    // when url is the default above and nothing answers there; "never";
    // "always".
    embedded: "auto",
  },

  // ms between merges of the local batch into Redis (one round trip each);
  // must be less than flushInterval. Unset, it is half of flushInterval, at
  // most 200 (so flushInterval: 100 gives 50).
  // batchInterval: 200,

  // true: a key tallyd does not know is an error, not a warning.
  strictConfig: false,

  // ms a shard's flushing lease lasts without renewal (checked every third of
  // it); also how long a process may go without reporting to Redis before the
  // leader stops waiting for its samples of a period (it is taken for dead;
  // its unmerged samples went with it). A dead leader's shards move to the
  // others within about this and a check, and their missed periods close.
  // At least 500.
  leaseTtl: 5000,

  // ms a clean stop (SIGTERM, SIGINT) may take: stop listening, merge the last
  // batches (at most half of it), then, as the leader, close and commit the
  // periods that are over, drain the outbox to Carbon, and release the lease.
  // The unfinished period waits in Redis for the next tallyd on the prefix.
  stopTimeout: 10000,

  // Bytes of Graphite lines kept in the Redis outbox (a stream) while Carbon
  // is unreachable [256 MiB]. Beyond it each commit drops the oldest lines
  // that are not being written at that moment, and counts them exactly
  // (statsd.outbox_dropped lines, statsd.outbox_dropped_bytes), never
  // silently. It can be exceeded by one delivery in flight (4 MiB).
  outboxMaxBytes: 268435456,

  // Most batches kept in memory while Redis is unreachable; what does not
  // fit is dropped and counted, never silently.
  maxPendingBatches: 1000,

  // Distinct names (plus set members and passthrough lines) at which a batch
  // is merged before batchInterval ends. A merge is one Lua script and Redis
  // runs nothing else meanwhile: 20,000 counters hold it ~30 ms.
  maxBatchNames: 20000,

  // Distinct names one flush period takes, all processes on the prefix
  // together (counter, timer, gauge and set names, each type apart; a gauge
  // already held is not new). Samples of a new name in a full period are
  // dropped and counted (statsd.names_dropped), with a warning naming a few.
  // Held per shard: each of redis.shards takes ceil(maxNamesPerPeriod /
  // shards) of a period's names (names spread evenly). 0: unbounded.
  maxNamesPerPeriod: 2000000,

  // ms a name that statsd re-emits while idle (counters as 0, timers, sets,
  // gauges' last value) may go without a sample before tallyd forgets it and
  // removes it from Redis, as a statsd restart would [one day]; counted in
  // statsd.names_forgotten. 0: never (statsd's own behaviour).
  forgetIdleAfter: 86400000,

  // Ingest processes (node:cluster). With more than 1, workers share the
  // UDP/TCP ports and the console, each merges its own batches into Redis and
  // one of them flushes; the ZeroMQ sockets bind in the first worker only.
  // The state is in Redis, so this is how tallyd uses more than one core.
  workers: 1,

  // Niceness (0..19) of the flush thread (rotate, compute, commit, Carbon).
  // When the cores are busy the ingest thread wins them, so a big flush takes
  // longer instead of UDP datagrams overflowing the socket buffer. 0: off.
  flushNice: 10,

  // ---- tallyd: HTTP ---------------------------------------------------------

  // The HTTP server (docs/operations.md, "HTTP"): GET /healthz, /readyz, /metrics
  // (Prometheus), /api/* and the status page. Without this key there is no
  // HTTP listener at all, as with statsd. port: 0 picks a free port.
  // historyMaxBytes / historyPeriods: the memory bound of the Redis history
  // of committed periods behind /api/names and /api/series (bytes of Graphite
  // lines [33554432], over all shards, and periods [360]: one hour at
  // flushInterval 10000).
  http: {
    port: 8127,
    address: "127.0.0.1",
    historyMaxBytes: 33554432,
    historyPeriods: 360,
  },

  // ---- tallyd: logging -----------------------------------------------------

  // Logs on stderr (pino). level: fatal, error, warn, info, debug, trace or
  // silent (statsd's LOG_INFO-style names are mapped, with a warning).
  // format: "pretty" (readable lines), "json" (JSON lines), or "auto":
  // pretty when stderr is a terminal, else JSON.
  log: {
    level: "info",
    format: "auto",
  },
})
