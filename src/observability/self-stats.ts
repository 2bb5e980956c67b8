/**
 * Process-local self-metrics: plain number counters bumped on the hot path.
 * The batcher folds the statsd-compatible ones into every batch as counters
 * (statsd.packets_received, statsd.metrics_received, statsd.bad_lines_seen),
 * so all processes sharing a Redis prefix add up. The others are tallyd's own
 * and are emitted by the leader under `<prefixStats>.tallyd.*` as gauges.
 *
 * | counter            | meaning                                                         |
 * | ------------------ | --------------------------------------------------------------- |
 * | packetsReceived    | UDP datagrams and TCP chunks of complete lines received          |
 * | oversizedPackets   | datagrams / TCP lines longer than maxPacketSize, dropped         |
 * | batchesMerged      | local batches merged into Redis                                 |
 * | batchesDropped     | batches dropped because Redis stayed down past maxPendingBatches |
 * | mergeErrors        | failed merge attempts (retried)                                 |
 * | outboxDropped      | Graphite chunks trimmed from a full outbox (Carbon down too long)|
 * | carbonErrors       | Carbon connection errors                                        |
 * | linesSent          | Graphite lines written to Carbon                                |
 */
export class SelfStats {
  packetsReceived = 0;
  oversizedPackets = 0;
  batchesMerged = 0;
  batchesDropped = 0;
  mergeErrors = 0;
  outboxDropped = 0;
  carbonErrors = 0;
  linesSent = 0;
  /** unix seconds of the last good line (statsd's messages.last_msg_seen). */
  lastMsgSeen = Math.round(Date.now() / 1000);
  readonly startedAt = Math.round(Date.now() / 1000);
  /** statsd graphite backend status. */
  graphite = { last_flush: Math.round(Date.now() / 1000), last_exception: 0, flush_time: 0, flush_length: 0 };
}
