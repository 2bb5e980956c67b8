/**
 * Every Redis key name tallyd uses, in one place. A key is
 * `<keyPrefix>v<LAYOUT>:{<shard>}:<name>`: the layout version changes when the
 * stored format changes, so new code never misreads old data; the braces are
 * a Redis Cluster hash tag so every script touches a single slot.
 *
 * Layout 3: each flush period has its own keys (`p:<boundaryMs>:<part>`),
 * into which batches merge by the period in which they were received: its
 * counters, timers and sets as packed parts appended one a batch and shard
 * (packed-parts.ts, folded by the leader at flush), its gauge ops in a hash;
 * the leader closes periods in order (see closePeriod-8.lua). (Layout 2 kept
 * counters, timers and sets in hashes, merged name by name.)
 */
export const LAYOUT_VERSION = 3;

/** One flush period's data, merged into until the period is closed, deleted at commit: the packed parts, the gauge ops. */
export const PERIOD_PARTS = ['parts', 'gauges'] as const;
export type PeriodPart = (typeof PERIOD_PARTS)[number];

/**
 * A period's gauge snapshot, taken at close (every gauge's value once the period's gauge ops were
 * applied), the count of names its merges admitted (gauges; maxNamesPerPeriod), and how many times its
 * leader compacted its parts (compactParts-3.lua: the guard of a compaction against another), deleted at commit.
 */
export type PeriodKey = PeriodPart | 'gauge_values' | 'names' | 'compactions';

export const KNOWN_TYPES = ['counters', 'timers', 'sets'] as const;
export type KnownType = (typeof KNOWN_TYPES)[number];

/** The sink that reads the outbox (graphite, text or pickle): names its cursor and claim keys. */
export const OUTBOX_READER = 'graphite';

/** Separates a metric name from a timer batch id or a set member in hash fields. */
export const FIELD_SEP = '\n';

export class Keys {
  readonly base: string;

  /** tag: the shard's hash tag (shards.ts); '0' with one shard. */
  constructor(keyPrefix: string, tag = '0') {
    this.base = `${keyPrefix}v${LAYOUT_VERSION}:{${tag}}:`;
  }

  /** The number of shards the prefix's state was created with (store.ts checks it at start); no hash tag. */
  static shardsRecord(keyPrefix: string): string {
    return `${keyPrefix}v${LAYOUT_VERSION}:shards`;
  }

  /** Every key of a prefix, all shards (tests' cleanup, the console's inspection). */
  static prefixPattern(keyPrefix: string): string {
    return `${keyPrefix}v${LAYOUT_VERSION}:*`;
  }

  /**
   * Hash on shard 0: flush thread token -> "<heartbeat ms>": the processes that may lead shards
   * (rendezvous hashing over the live ones, flush/shard-leases.ts).
   */
  get flushers(): string {
    return `${this.base}flushers`;
  }

  /**
   * Hash on each shard: period boundary ms -> "<numStats> <processing ms> <statsd's own counters>" of that shard's committed period, written by
   * its commit and read by shard 0's leader, which emits the fleet's self-metrics for the period once (flusher.ts).
   */
  get fleet(): string {
    return `${this.base}fleet`;
  }

  /** One part of the period ending at boundaryMs (samples received in [boundaryMs - flushInterval, boundaryMs)). */
  period(boundaryMs: number, part: PeriodKey): string {
    return `${this.base}p:${boundaryMs}:${part}`;
  }

  /** Every key of one period, in PERIOD_PARTS order, then the gauge snapshot, the name count and the compactions. */
  periodKeys(boundaryMs: number): string[] {
    const keys: string[] = PERIOD_PARTS.map((p) => this.period(boundaryMs, p));
    keys.push(this.period(boundaryMs, 'gauge_values'), this.period(boundaryMs, 'names'), this.period(boundaryMs, 'compactions'));
    return keys;
  }

  /** Sorted set of periods (boundary ms) that received a merge and are not closed yet. */
  get open(): string {
    return `${this.base}open`;
  }

  /** Highest period boundary (ms) closed so far: merges for it or older are late. */
  get closed(): string {
    return `${this.base}closed`;
  }

  /** Sorted set of closed, not yet committed period boundaries (ms). */
  get pending(): string {
    return `${this.base}pending`;
  }

  /** Hash: member id -> "<heartbeat ms> <watermark ms>" of every ingesting process. */
  get members(): string {
    return `${this.base}members`;
  }

  /** Boundary (ms) of the last committed period, set by every commit (health reads it). */
  get lastCommit(): string {
    return `${this.base}last_commit`;
  }

  /** Persistent gauges (statsd keeps them across flushes), as of the last closed period. */
  get gauges(): string {
    return `${this.base}gauges`;
  }

  /** Remaining flushes per gauge when deleteGauges is on (statsd's gaugesTTL). */
  get gaugeTtl(): string {
    return `${this.base}gauge_ttl`;
  }

  /** Hash: name -> ms the leader last saw a sample of it (forgetIdleAfter); '1' from before that was recorded. */
  known(type: KnownType): string {
    return `${this.base}known:${type}`;
  }

  /** Hash: gauge name -> ms the leader last saw an op for it (forgetIdleAfter). */
  get gaugeSeen(): string {
    return `${this.base}gauge_seen`;
  }

  /** Bumped whenever names are deleted from known:*, so a leader's cached copy of them is re-read. */
  get knownVersion(): string {
    return `${this.base}known_version`;
  }

  /** What a batch's merge dropped and clamped, for a retry whose first reply was lost (mergeBatch-11.lua). */
  mergedCounts(batchId: string): string {
    return `${this.base}merged_counts:${batchId}`;
  }

  /** Sorted set of merged batch ids (score: ms), so a retried merge never counts twice. */
  get merged(): string {
    return `${this.base}merged`;
  }

  /** Stream of computed chunks {d, n, b} waiting for the sinks (store/scripts/includes/outbox.lua). */
  get outbox(): string {
    return `${this.base}outbox`;
  }

  /** Sum of the outbox entries' b (bytes): what outboxMaxBytes bounds. */
  get outboxBytes(): string {
    return `${this.base}outbox_bytes`;
  }

  /** A sink's cursor: id of the last outbox entry it delivered. */
  outboxAcked(sink: string): string {
    return `${this.base}outbox_acked:${sink}`;
  }

  /** Id of the last outbox entry of the read a sink is writing now; the bound never trims up to it. */
  outboxClaim(sink: string): string {
    return `${this.base}outbox_claim:${sink}`;
  }

  /** Sorted set of the periods kept for the HTTP API (member and score: boundary ms); store/recent.ts. */
  get recent(): string {
    return `${this.base}recent`;
  }

  /** Hash: boundary ms -> bytes of Graphite lines of that kept period (what http.historyMaxBytes bounds). */
  get recentBytes(): string {
    return `${this.base}recent_bytes`;
  }

  /** Hash of one kept committed period: Graphite name -> value. */
  recentPeriod(boundaryMs: number): string {
    return `${this.base}recent:${boundaryMs}`;
  }

  get lease(): string {
    return `${this.base}lease`;
  }

  /** Every fixed key (not the per-period ones): for tests' cleanup and the console. */
  pattern(): string {
    return `${this.base}*`;
  }
}
