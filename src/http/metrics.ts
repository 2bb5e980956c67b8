/**
 * GET /metrics: this process's self-metrics in Prometheus text exposition
 * (prom-client, a registry of its own), plus prom-client's default process
 * metrics (CPU, memory, event loop lag, handles, GC).
 *
 * Counters are this process's running totals since it started (SelfStats and
 * the parser's counters only grow: the statsd.* self-metrics are emitted from
 * their deltas), so they are monotonic as Prometheus wants. Gauges from Redis
 * (outbox, last commit: over every shard) come from the same HealthReport as the console's
 * `health` and /readyz; they are absent from the answer when Redis does not
 * answer (and tallyd_redis_up is 0). docs/operations.md "HTTP" has the table.
 */
import { collectDefaultMetrics, Counter, Gauge, Registry } from 'prom-client';
import type { HealthReport } from '../observability/health.js';
import type { SelfStats } from '../observability/self-stats.js';
import type { HttpCounters } from './server.js';

/** The parser's counters (StatsdLineParser). */
export interface IngestTotals {
  readonly metricsReceived: number;
  readonly badLines: number;
  readonly eventsIgnored: number;
}

/** Facts of the flush thread mirrored to this thread (FlushHost). */
export interface FlushTimes {
  readonly lastFlushMs: number | null;
  readonly lastLagS: number | null;
}

export interface MetricSources {
  readonly self: SelfStats;
  readonly ingest: IngestTotals;
  readonly flush: FlushTimes;
  readonly http: () => HttpCounters;
}

type CounterSpec = [name: string, help: string, value: (s: MetricSources) => number];

const COUNTERS: ReadonlyArray<CounterSpec> = [
  ['packets_received', 'UDP datagrams and TCP chunks of complete lines received (statsd packets_received)', (s) => s.self.packetsReceived],
  ['lines_received', 'statsd lines received, good or bad (statsd metrics_received)', (s) => s.ingest.metricsReceived],
  ['bad_lines', 'bad statsd values, skipped (statsd bad_lines_seen)', (s) => s.ingest.badLines],
  ['events_ignored', 'DogStatsD events and service checks, recognized and not aggregated', (s) => s.ingest.eventsIgnored],
  ['zmq_messages_received', 'ZeroMQ messages received, good or bad', (s) => s.self.zmqMessagesReceived],
  ['zmq_items_received', 'JSON items of ZeroMQ messages accepted (statsd lines in messages count in lines_received)', (s) => s.self.zmqItemsReceived],
  ['zmq_bad_frames', 'ZeroMQ messages that gave nothing (not zlib or UTF-8, not JSON, empty, or all bad)', (s) => s.self.zmqBadFrames],
  ['zmq_bad_items', 'ZeroMQ JSON items rejected, each skipped', (s) => s.self.zmqBadItems],
  ['zmq_disconnects', 'ZeroMQ publishers disconnected: closed, or dropped by libzmq for a frame over maxMessageSize', (s) => s.self.zmqDisconnects],
  ['oversized_packets', 'datagrams and TCP lines longer than maxPacketSize, dropped', (s) => s.self.oversizedPackets],
  ['zmq_oversized_messages', 'ZeroMQ messages longer than maxMessageSize, dropped', (s) => s.self.zmqOversized],
  ['names_dropped', 'names refused by maxNamesPerPeriod, once per batch that carried them', (s) => s.self.namesDropped],
  ['names_forgotten', 'known names forgotten after forgetIdleAfter without a sample', (s) => s.self.namesForgotten],
  ['values_clamped', 'values clamped to +-Number.MAX_VALUE (gauges, timer stats)', (s) => s.self.valuesClamped],
  ['batches_dropped', 'local batches dropped: Redis down past maxPendingBatches', (s) => s.self.batchesDropped],
  ['outbox_dropped_lines', 'Graphite lines dropped by the outboxMaxBytes bound, oldest first', (s) => s.self.outboxDropped],
  ['outbox_dropped_bytes', 'bytes of the Graphite lines dropped by the outboxMaxBytes bound', (s) => s.self.outboxDroppedBytes],
  ['udp_kernel_drops', 'datagrams the kernel dropped on tallyd UDP sockets (receive buffer full)', (s) => s.self.udpKernelDrops],
  ['tcp_connections_refused', 'TCP connections closed at once: maxConnections open', (s) => s.self.tcpConnectionsRefused],
  ['tcp_idle_closed', 'TCP connections closed after tcpIdleTimeout without data', (s) => s.self.tcpIdleClosed],
  ['late_samples', 'samples whose period was closed before their batch merged (folded into the oldest open period)', (s) => s.self.lateSamples],
  ['merge_errors', 'failed batch merge attempts into Redis (each batch is retried)', (s) => s.self.mergeErrors],
  ['batches_merged', 'local batches merged into Redis', (s) => s.self.batchesMerged],
  ['redis_timeouts', 'Redis commands without a reply within redis.commandTimeout', (s) => s.self.redisTimeouts],
  ['carbon_errors', 'Carbon deliveries lost and written again (error, reset, unclean close, timeout)', (s) => s.self.carbonErrors],
  ['lines_sent', 'Graphite lines written to Carbon by this process', (s) => s.self.linesSent],
  ['mgmt_refused', 'management console commands refused (busy, or a change from a non-loopback address)', (s) => s.self.mgmtRefused],
  ['history_errors', 'committed periods that could not be kept in Redis for the HTTP API', (s) => s.self.historyErrors],
  ['history_skipped', 'committed periods not kept for the HTTP API (larger than http.historyMaxBytes, or too many waiting)', (s) => s.self.historySkipped],
  ['http_requests', 'HTTP requests received', (s) => s.http().requests],
  ['http_refused', 'HTTP requests answered 503 because too many were running', (s) => s.http().refusedBusy],
  ['http_errors', 'HTTP requests answered 500 (a handler failed)', (s) => s.http().errors],
];

type GaugeSpec = [name: string, help: string, value: (r: HealthReport, s: MetricSources) => number | null];

const seconds = (ms: number | null | undefined): number | null => (ms === null || ms === undefined ? null : ms / 1000);

const GAUGES: ReadonlyArray<GaugeSpec> = [
  ['up', '1 when health is up (the facts of the console health and /readyz), else 0', (r) => (r.status === 'up' ? 1 : 0)],
  ['redis_up', '1 when Redis answers a PING in time, else 0', (r) => (r.redis.answers ? 1 : 0)],
  ['leader', '1 while this process leads (holds the flush lease of) at least one shard, else 0', (r) => (r.leader ? 1 : 0)],
  ['shards_led', 'shards whose flush lease this process holds', (r) => r.shards.led.length],
  ['shards', 'shards of the state (redis.shards, as recorded in Redis)', (r) => r.shards.count],
  ['outbox_entries', 'entries (chunks of Graphite lines) waiting in the Redis outbox, every shard\'s summed', (r) => r.outbox?.entries ?? null],
  ['outbox_bytes', 'bytes of Graphite lines waiting in the Redis outbox, every shard\'s summed', (r) => r.outbox?.bytes ?? null],
  ['outbox_max_bytes', 'the outbox bound (outboxMaxBytes)', (r) => r.outboxMaxBytes],
  ['outbox_oldest_age_seconds', 'age of the oldest outbox entry of any shard (0 when empty)', (r) => (r.outbox ? (seconds(r.outbox.oldestAgeMs) ?? 0) : null)],
  ['last_commit_age_seconds', 'time since the boundary of the last period committed, by any process, on the shard whose last commit is oldest', (r) => seconds(r.lastCommit.ageMs)],
  ['batches_waiting', 'local batches waiting to be merged into Redis', (r) => r.batchesWaiting],
  ['flush_duration_seconds', 'time the last period this process committed took, read to commit', (_r, s) => seconds(s.flush.lastFlushMs)],
  ['timestamp_lag_seconds', 'time from the last committed period boundary to its commit, by this process (statsd timestamp_lag)', (_r, s) => s.flush.lastLagS],
];

const GAUGES_NAMED_TOTAL = ['nodejs_active_handles_total', 'nodejs_active_requests_total', 'nodejs_active_resources_total'];

export class PromMetrics {
  readonly registry = new Registry();
  private readonly gauges: Array<[Gauge, string, GaugeSpec[2]]> = [];

  constructor(private readonly sources: MetricSources) {
    const registers = [this.registry];
    collectDefaultMetrics({ register: this.registry });
    // Gauges named like counters, which `promtool check metrics` rejects; nodejs_active_{handles,requests,resources} (by type) stay.
    for (const name of GAUGES_NAMED_TOTAL) this.registry.removeSingleMetric(name);
    for (const [name, help, value] of COUNTERS) {
      new Counter({
        name: `tallyd_${name}_total`,
        help: `Total ${help}.`,
        registers,
        collect() {
          this.reset();
          this.inc(value(sources));
        },
      });
    }
    // Registered only while their value is known (prom-client prints an unlabelled gauge as 0 even after reset()).
    for (const [short, help, value] of GAUGES) {
      const name = `tallyd_${short}`;
      this.gauges.push([new Gauge({ name, help: `${help[0]?.toUpperCase()}${help.slice(1)}.`, registers: [] }), name, value]);
    }
  }

  get contentType(): string {
    return this.registry.contentType;
  }

  /** The exposition text, with the gauges set from report (unknown ones are left out). */
  async text(report: HealthReport): Promise<string> {
    for (const [gauge, name, value] of this.gauges) {
      const v = value(report, this.sources);
      const registered = this.registry.getSingleMetric(name) !== undefined;
      if (v === null) {
        if (registered) this.registry.removeSingleMetric(name);
        continue;
      }
      gauge.set(v);
      if (!registered) this.registry.registerMetric(gauge);
    }
    return this.registry.metrics();
  }
}
