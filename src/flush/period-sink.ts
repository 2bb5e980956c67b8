/**
 * The sink boundary: a backend in front of computed periods, as small as a
 * gostatsd backend. The flusher calls encode() before committing a period and
 * committed() once the commit went through; the flush thread (the
 * composition root) starts and stops sinks. Sinks live in src/sink/ and
 * import from here; nothing in src/flush/ imports a sink (src/flush-thread.ts wires them).
 */
import type { ComputedPeriod } from './computed-period.js';

export interface PeriodSink {
  /** statsd's backend name: 'graphite', 'console'. */
  readonly name: string;
  start(): void;
  /**
   * Chunks for the Redis outbox ('\n'-terminated lines, committed with the
   * period in one fenced script, then delivered at least once); [] if the
   * sink keeps nothing in the outbox.
   */
  encode(period: ComputedPeriod): Promise<string[]>;
  /** The period was committed (by this leader, once). */
  committed(period: ComputedPeriod): void;
  /** Whether it is writing lines of its shard now (a handover of the shard waits until it is not). Default: never. */
  busy?(): boolean;
  /** Stops, after delivering what it can for up to timeoutMs. */
  stop(timeoutMs: number): Promise<void>;
}
