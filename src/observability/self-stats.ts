/**
 * Process-local self-metrics: plain number counters bumped on the hot path.
 * The batcher folds them into every batch as counters, so the totals of all
 * processes sharing a Redis prefix add up and are emitted like any counter
 * (`stats.<prefixStats>.x` rate and `stats_counts.<prefixStats>.x`). statsd's
 * three are always emitted; tallyd's loss counters appear once non-zero.
 *
 * | counter          | emitted as                  | meaning                                                          |
 * | ---------------- | --------------------------- | ---------------------------------------------------------------- |
 * | packetsReceived  | <prefixStats>.packets_received | UDP datagrams and TCP chunks of complete lines (as statsd)     |
 * | (parser)         | <prefixStats>.metrics_received | non-empty lines, good or bad (as statsd)                       |
 * | (parser)         | <prefixStats>.bad_lines_seen   | bad values (as statsd: each bad value of a multi-value line; a line bad as a whole, by its name or tags, once) |
 * | (parser)         | <prefixStats>.events_ignored   | DogStatsD events (`_e{..}`) and service checks (`_sc|..`), recognized and not aggregated (statsd: bad lines) |
 * | oversizedPackets | <prefixStats>.oversized_packets | datagrams / TCP lines longer than maxPacketSize, dropped      |
 * | batchesDropped   | <prefixStats>.batches_dropped | batches dropped: Redis down past maxPendingBatches               |
 * | mergeErrors      | <prefixStats>.merge_errors   | failed merge attempts of a batch, once per try whatever number of its shard parts failed (each is retried) |
 * | lateSamples      | <prefixStats>.late_samples   | samples whose period was closed before their batch merged, folded into the oldest open period |
 * | outboxDropped    | <prefixStats>.outbox_dropped | Graphite lines the outboxMaxBytes bound dropped, oldest first (exact) |
 * | outboxDroppedBytes | <prefixStats>.outbox_dropped_bytes | bytes of those lines                                       |
 * | carbonErrors     | <prefixStats>.carbon_errors  | Carbon deliveries lost (error, reset, unclean close, carbonWriteTimeout); each is written again |
 * | zmqMessagesReceived | <prefixStats>.zmq_messages_received | ZeroMQ messages received, good or bad                     |
 * | zmqBadFrames     | <prefixStats>.zmq_bad_frames | ZeroMQ messages that gave nothing: not zlib or UTF-8 text, not JSON, empty, or every item/line bad |
 * | zmqBadItems      | <prefixStats>.zmq_bad_items  | JSON items rejected (no name, non-numeric value, bad type/rate/tags/time), each skipped |
 * | zmqOversized     | <prefixStats>.zmq_oversized  | ZeroMQ messages longer than maxMessageSize once inflated, dropped (libzmq refuses longer frames as received: zmqDisconnects) |
 * | zmqDisconnects   | <prefixStats>.zmq_disconnects | ZeroMQ publishers disconnected: closed, or dropped by libzmq for a frame over maxMessageSize |
 * | udpKernelDrops   | <prefixStats>.udp_kernel_drops | datagrams the kernel dropped on tallyd's UDP sockets (receive buffer full), from /proc/net/udp{,6} (udp-drops.ts) |
 * | redisTimeouts    | <prefixStats>.redis_timeouts | Redis commands that got no reply within redis.commandTimeout (ingest and flush thread); a timed-out merge is retried |
 * | tcpConnectionsRefused | <prefixStats>.tcp_connections_refused | TCP connections closed at once because the server had maxConnections open |
 * | tcpIdleClosed    | <prefixStats>.tcp_idle_closed | TCP connections closed after tcpIdleTimeout ms without data         |
 * | udpSocketErrors  | <prefixStats>.udp_socket_errors | errors a UDP socket reported to the native reader (POLLERR, e.g. an ICMP error, or a failed read); it clears them and reads on |
 * | udpReadersStopped | (console `stats`, health down) | native UDP readers that stopped after a socket error they could not clear |
 * | namesDropped     | <prefixStats>.names_dropped  | names refused by maxNamesPerPeriod: once per name per batch (gauges, mergeBatch-11.lua) or per part (the rest, at the fold: flush/fold-parts.ts) that carried it |
 * | namesForgotten   | <prefixStats>.names_forgotten | known names and gauges forgotten after forgetIdleAfter without a sample (flush/known-names.ts) |
 * | valuesClamped    | <prefixStats>.values_clamped | gauges clamped to +-Number.MAX_VALUE (batch, merge, close) and timer stats clamped when computed |
 * | batchesMerged, linesSent | (console `stats`)    | work done                                                        |
 * | mgmtRefused      | (console `stats`)            | console commands refused: mgmtMaxConcurrent running, or a change from a non-loopback address |
 * | zmqItemsReceived | (HTTP /metrics)              | JSON items of ZeroMQ messages accepted (their statsd lines count in metrics_received) |
 * | historyErrors    | <prefixStats>.history_errors | committed periods the flush thread failed to keep in Redis for the HTTP API (store/recent.ts) |
 * | historySkipped   | <prefixStats>.history_skipped | committed periods not kept for the HTTP API: larger than http.historyMaxBytes, or too many waiting |
 *
 * statsd lines inside ZeroMQ messages count in metrics_received and bad_lines_seen like any others.
 */
export class SelfStats {
  packetsReceived = 0;
  oversizedPackets = 0;
  batchesMerged = 0;
  batchesDropped = 0;
  mergeErrors = 0;
  lateSamples = 0;
  outboxDropped = 0;
  outboxDroppedBytes = 0;
  carbonErrors = 0;
  linesSent = 0;
  zmqMessagesReceived = 0;
  /** JSON items of ZeroMQ messages accepted (statsd lines in them count in the parser's metricsReceived). */
  zmqItemsReceived = 0;
  zmqBadFrames = 0;
  zmqBadItems = 0;
  zmqOversized = 0;
  zmqDisconnects = 0;
  /** Sampled from /proc on a timer (UdpDropsSampler); only grows. */
  udpKernelDrops = 0;
  /** This thread's timeouts plus the flush thread's (mirrored by FlushHost). */
  redisTimeouts = 0;
  tcpConnectionsRefused = 0;
  tcpIdleClosed = 0;
  udpSocketErrors = 0;
  udpReadersStopped = 0;
  mgmtRefused = 0;
  namesDropped = 0;
  /** Counted by the flush thread's leader (mirrored by FlushHost). */
  namesForgotten = 0;
  /** This thread's clamps plus the flush thread's (mirrored by FlushHost). */
  valuesClamped = 0;
  historyErrors = 0;
  historySkipped = 0;
  /** unix seconds of the last good line (statsd's messages.last_msg_seen). */
  lastMsgSeen = Math.round(Date.now() / 1000);
  readonly startedAt = Math.round(Date.now() / 1000);
  /** statsd graphite backend status. */
  graphite = { last_flush: Math.round(Date.now() / 1000), last_exception: 0, flush_time: 0, flush_length: 0 };
}
