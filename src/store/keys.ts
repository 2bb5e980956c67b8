/**
 * Every Redis key name tallyd uses, in one place. A key is
 * `<keyPrefix>v<LAYOUT>:{<shard>}:<name>`: the layout version changes when the
 * stored format changes, so new code never misreads old data; the braces are
 * a Redis Cluster hash tag so every script touches a single slot.
 */
export const LAYOUT_VERSION = 2;

/** Hashes holding one flush period's data; RENAMEd as a group at rotation. */
export const PERIOD_PARTS = ['counters', 'timers', 'timer_counts', 'sets', 'gauges_touched'] as const;
export type PeriodPart = (typeof PERIOD_PARTS)[number];

export const KNOWN_TYPES = ['counters', 'timers', 'sets'] as const;
export type KnownType = (typeof KNOWN_TYPES)[number];

/** The sink that reads the outbox (graphite, text or pickle): names its cursor and claim keys. */
export const OUTBOX_READER = 'graphite';

/** Separates a metric name from a timer batch id or a set member in hash fields. */
export const FIELD_SEP = '\n';

export class Keys {
  readonly base: string;

  constructor(keyPrefix: string, shard = '0') {
    this.base = `${keyPrefix}v${LAYOUT_VERSION}:{${shard}}:`;
  }

  cur(part: PeriodPart): string {
    return `${this.base}cur:${part}`;
  }

  pendingPart(ts: number, part: PeriodPart | 'gauges'): string {
    return `${this.base}pending:${ts}:${part}`;
  }

  /** Sorted set of rotated, not yet committed period boundaries (unix s). */
  get pending(): string {
    return `${this.base}pending`;
  }

  /** Highest boundary ever rotated: a stale or slow leader can't rotate an older one. */
  get lastRotated(): string {
    return `${this.base}last_rotated`;
  }

  /** Persistent gauges (statsd keeps them across flushes). */
  get gauges(): string {
    return `${this.base}gauges`;
  }

  /** Remaining flushes per gauge when deleteGauges is on (statsd's gaugesTTL). */
  get gaugeTtl(): string {
    return `${this.base}gauge_ttl`;
  }

  known(type: KnownType): string {
    return `${this.base}known:${type}`;
  }

  /** Bumped whenever names are deleted from known:*, so a leader's cached copy of them is re-read. */
  get knownVersion(): string {
    return `${this.base}known_version`;
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

  get lease(): string {
    return `${this.base}lease`;
  }

  /** Every fixed key (not the per-period ones): for tests' cleanup and the console. */
  pattern(): string {
    return `${this.base}*`;
  }
}
