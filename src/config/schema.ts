/**
 * Every top-level config key, declared once: how it is read and validated,
 * its default and its documentation (field.ts). The Config type (types.ts),
 * DEFAULTS (defaults.ts), the known-key lists (keys.ts) and docs/config.md
 * (scripts/config-docs.ts, checked by test/unit/config-docs.test.ts) all
 * come from here. Keys are read in this order, so a key may depend on one
 * declared above it (batchInterval on flushInterval, the delete* keys on
 * deleteIdleStats).
 */
import { bool, count, custom, type Done, int, millis, oneOf, port, str } from './field.js';
import { consoleSection, graphiteSection, httpSection, logSection, redisSection } from './schema-sections.js';
import { type BackendName, checkBackends, readGaugesMaxTTL, readHistogram, readPercentThreshold, readServers, readTimerMetrics } from './validate-lists.js';
import { type AnyServerConfig, DEFAULT_SERVER } from './schema-servers.js';
import type { HistogramConfig } from './validate-lists.js';

/**
 * batchInterval when the config does not set it: half of flushInterval, at
 * most 200 ms (at least 1 ms), so any flushInterval statsd accepts (100 ms,
 * say) works without a tallyd-only key.
 */
export function defaultBatchInterval(flushIntervalMs: number): number {
  return Math.max(1, Math.min(200, Math.floor(flushIntervalMs / 2)));
}

/** statsd's stats.js: deleteIdleStats turns on every delete* that is not set explicitly. */
function deleteKey(what: string) {
  return custom(false, { origin: 'statsd', defaultText: '`deleteIdleStats`', doc: `don't re-emit idle ${what}` },
    (c, o, k, p, done: Done) => c.bool(o, k, p, done['deleteIdleStats'] === true));
}

export const TOP_FIELDS = {
  // Read first: it decides whether an unknown key is an error.
  strictConfig: bool(false, { doc: '`true`: a key tallyd does not know is an error instead of a warning' }),
  backends: custom<ReadonlyArray<BackendName>>(Object.freeze(['graphite'] as const), {
    origin: 'statsd', defaultText: '`["graphite"]`',
    doc: '`graphite` and/or `console` (`./backends/graphite`, `./backends/console` work too); others load with a warning. '
      + '`console` prints every flush like statsd\'s console backend (each shard\'s leader prints its shard\'s names: one block per shard and period)',
  }, (c, o) => checkBackends(c, o)),

  servers: custom<ReadonlyArray<AnyServerConfig>>(Object.freeze([DEFAULT_SERVER]), {
    origin: 'statsd', defaultText: 'one UDP server on `0.0.0.0:8125`',
    doc: 'ingest sockets: `[{server: "udp"|"tcp", address, port, address_ipv6}]`; `"./servers/udp"` also works; a missing `server` means udp. '
      + 'tallyd adds ZeroMQ sockets, `{server: "zmq", ...}`. Without `servers`, the top-level `port`, `address`, `address_ipv6` and `server` '
      + 'describe a single server, as in statsd. The keys of an entry are in the [servers](#servers) table',
  }, (c, o) => readServers(c, o)),
  mgmt_address: str('0.0.0.0', { origin: 'statsd', nonEmpty: true, doc: 'management console bind address' }),
  mgmt_port: port(8126, { origin: 'statsd', doc: 'management console port' }),
  mgmtMaxConcurrent: count(4, {
    doc: 'console commands running at once in a process; more are answered `ERROR busy ...` and counted (`tallyd.mgmt_refused` in `stats`)',
  }),
  mgmtAllowRemoteChanges: bool(false, {
    doc: 'accept the console\'s state-changing commands (`delcounters`, `deltimers`, `delgauges`, `health up|down`) from addresses other '
      + 'than loopback (127.0.0.0/8, ::1); refused with an `ERROR` line and logged otherwise. Reads are served to anyone, as in statsd',
  }),
  mgmtWriteTimeout: millis(10000, {
    doc: 'ms a console answer may wait for the client to read it (a listing of many names is written as the client reads); then the '
      + 'connection is closed, so a client that asks and never reads holds no `mgmtMaxConcurrent` slot for long',
  }),
  maxConnections: count(1000, { doc: 'open connections per TCP server; more are closed at once and counted (`statsd.tcp_connections_refused`)' }),
  tcpIdleTimeout: millis(60000, {
    doc: 'ms a TCP connection may send nothing before tallyd closes it, counted (`statsd.tcp_idle_closed`); an unterminated last line is '
      + 'parsed as on the client\'s own close',
  }),

  graphiteHost: custom<string | null>(null, {
    origin: 'statsd', defaultText: 'none', doc: 'Carbon\'s host; without it, aggregates are not sent anywhere, as in statsd',
  }, (c, o, k, p) => (o[k] === undefined || o[k] === null ? null : c.str(o, k, p, '', true) || null)),
  graphitePort: port(2003, { origin: 'statsd', min: 1, doc: 'Carbon\'s plaintext receiver port' }),
  graphiteProtocol: oneOf<'text' | 'pickle'>('text', ['text', 'pickle'], {
    origin: 'statsd',
    doc: '`pickle`: carbon\'s pickle frames (4-byte length + pickled list of `(name, (timestamp, value))`) to `graphitePicklePort` instead '
      + 'of plaintext to `graphitePort`; same outbox, same guarantees',
  }),
  graphitePicklePort: port(2004, { origin: 'statsd', min: 1, doc: 'Carbon\'s pickle receiver port' }),
  console: consoleSection,
  graphite: graphiteSection,

  flushInterval: millis(10000, { origin: 'statsd', doc: 'ms per period; boundaries fall on wall-clock multiples of it' }),
  percentThreshold: custom<ReadonlyArray<number>>(Object.freeze([90]), {
    origin: 'statsd', doc: 'number or list; negative = top N% (`lower_topN`)',
  }, (c, o) => readPercentThreshold(c, o, [90])),
  histogram: custom<ReadonlyArray<HistogramConfig>>(Object.freeze([]), {
    origin: 'statsd', doc: '`[{metric: "substring", bins: [10, 100, "inf"]}]`',
  }, (c, o) => readHistogram(c, o)),
  calculatedTimerMetrics: custom<ReadonlyArray<string>>(Object.freeze([]), {
    origin: 'statsd', defaultText: 'all', doc: 'timer sub-metrics to emit (`count`, `mean`, `upper_percent`, ...)',
  }, (c, o) => readTimerMetrics(c, o)),
  deleteIdleStats: bool(false, { origin: 'statsd', doc: 'sets each `delete*` key below that isn\'t given explicitly' }),
  deleteCounters: deleteKey('counters (re-emitted as 0 otherwise)'),
  deleteTimers: deleteKey('timers (re-emitted as 0 otherwise)'),
  deleteGauges: deleteKey('gauges (re-emitted at their last value otherwise)'),
  deleteSets: deleteKey('sets (re-emitted as 0 otherwise)'),
  gaugesMaxTTL: custom(1, { origin: 'statsd', doc: 'with `deleteGauges`: flushes an idle gauge survives' }, (c, o) => readGaugesMaxTTL(c, o)),
  prefixStats: str('statsd', { origin: 'statsd', doc: 'prefix of the internal metrics' }),
  keyNameSanitize: bool(true, { origin: 'statsd', doc: '`/` → `-`, whitespace → `_`, drop other characters outside `[a-zA-Z0-9_.;=-]`' }),
  flush_counts: bool(true, { origin: 'statsd', doc: 'also emit `stats_counts.*` (or `<name>.count`)' }),
  healthStatus: oneOf<'up' | 'down'>('up', ['up', 'down'], { origin: 'statsd', doc: 'initial answer of the console\'s `health`' }),
  dumpMessages: bool(false, { origin: 'statsd', doc: 'log every received line (info level; slow)' }),

  redis: redisSection,
  batchInterval: custom(defaultBatchInterval(10000), {
    defaultText: 'half of `flushInterval`, at most 200',
    doc: 'ms between merges of the local batch into Redis (one round trip each); must be less than `flushInterval`. Unset, it follows '
      + '`flushInterval` (`flushInterval: 100` gives 50), so any statsd `flushInterval` works without it',
  }, (c, o, k, p, done) => {
    const flushInterval = done['flushInterval'] as number;
    const batchInterval = c.millis(o, k, p, defaultBatchInterval(flushInterval));
    if (batchInterval < flushInterval) return batchInterval;
    if (o[k] !== undefined) c.problem(k, `must be less than flushInterval (${flushInterval}), got ${batchInterval}`);
    else c.problem('flushInterval', `must be greater than batchInterval (${batchInterval}), got ${flushInterval}`);
    return batchInterval;
  }),
  leaseTtl: custom(5000, {
    doc: 'ms a shard\'s flushing lease lasts without renewal (checked every third of it); a dead leader\'s shards move to the others '
      + 'within this time and a check. Also a process\'s liveness: '
      + 'one that reports nothing to Redis for this long is taken for dead, and the leader stops waiting for its samples of a period. '
      + 'At least 500',
  }, (c, o, k, p) => c.int(o, k, p, 5000, 500, Number.MAX_SAFE_INTEGER, 'an integer number of milliseconds, at least 500')),
  stopTimeout: millis(10000, {
    doc: 'ms a clean stop (SIGTERM, SIGINT) may take: merge the last batches (at most half of it), close and commit the periods that are '
      + 'over, drain the outbox to Carbon, release the lease (the flush thread gets 3 s more to let go before it is terminated); the '
      + 'unfinished period waits in Redis for the next tallyd',
  }),
  outboxMaxBytes: count(256 * 1024 * 1024, {
    doc: 'bytes of Graphite lines kept in the Redis outbox while Carbon is down (256 MiB); beyond it each commit drops the oldest lines not '
      + 'being written at that moment and counts them exactly (`outbox_dropped`, `outbox_dropped_bytes`); a delivery in flight (4 MiB) '
      + 'may exceed it',
  }),
  carbonWriteTimeout: millis(10000, {
    doc: 'ms a Carbon delivery may make no progress (connecting, writing, or waiting for Carbon to read to the end and close) before it is '
      + 'dropped, counted in `carbon_errors` and written again',
  }),
  maxPendingBatches: count(1000, { doc: 'most batches kept in memory while Redis is down; beyond it the oldest are dropped and counted' }),
  maxBatchNames: count(20000, {
    doc: 'distinct names (plus set members and passthrough lines) at which a batch is merged before `batchInterval` ends, so one merge '
      + 'never holds Redis long',
  }),
  maxNamesPerPeriod: int(2_000_000, 0, Number.MAX_SAFE_INTEGER, 'an integer count of names, 0 for unbounded', {
    doc: 'distinct names one flush period takes, all processes on the prefix together: its counter, timer, gauge and set names, each '
      + 'type apart; a gauge already held from earlier periods is not new. Gauges are admitted as they merge, then counters, timers and '
      + 'sets in merge order when the period is flushed. Past it, samples of a name new to the period are dropped and counted '
      + '(`names_dropped`: by the merging process for gauges, by the flushing one for the rest), with a rate-limited warning quoting a '
      + 'few; names the period holds keep merging, and counters named `<prefixStats>.*` are never dropped. The bound holds per shard: '
      + 'each of the `redis.shards` shards takes ceil(maxNamesPerPeriod / shards) names a period (names spread evenly over the shards, so '
      + 'the whole is about maxNamesPerPeriod). It also bounds the memory a period takes in Redis before it is flushed: 256 bytes a name '
      + 'of the bound, at least 1 MiB a shard (512 MB at the default); past that, a batch\'s counters, timers and sets are dropped whole '
      + 'and counted as its names (tallyd\'s own counters still come in). Busy names do not use it up: each shard\'s leader compacts '
      + 'the open period as it grows, each name once. 0: unbounded',
  }),
  forgetIdleAfter: int(86_400_000, 0, Number.MAX_SAFE_INTEGER, 'an integer number of milliseconds, 0 for never', {
    doc: 'ms a name statsd re-emits while idle (a counter as 0, a timer, a set, a gauge\'s last value) may go without a sample before it is '
      + 'forgotten: no longer emitted, removed from Redis, as a statsd restart would forget it (one day); forgotten between this and 1.1 x '
      + 'this after its last sample, counted in `names_forgotten`. 0: never (statsd\'s behaviour)',
  }),
  workers: int(1, 1, 64, 'an integer number of processes from 1 to 64', {
    doc: 'ingest processes (node:cluster) sharing the UDP/TCP ports and the console; each merges its own batches, one flushes; ZeroMQ '
      + 'sockets bind in the first worker only. With the native UDP reader each worker binds the port with `SO_REUSEPORT` and the kernel '
      + 'spreads the senders (by source address and port) over them; with `node:dgram` they share one socket',
  }),
  flushNice: int(10, 0, 19, 'an integer niceness from 0 to 19', {
    doc: 'niceness (0..19) of the flush thread; when the cores are busy, ingest wins them and a big flush takes longer instead of UDP '
      + 'datagrams being dropped; 0 leaves it at the process\'s priority',
  }),
  log: logSection,
  http: httpSection,
};

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
