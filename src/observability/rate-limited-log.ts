/**
 * Logs at most one warning per interval for a kind of event, saying how many
 * were suppressed since the last one. Callers still count every event in a
 * self-metric; this only keeps the log readable under a flood of bad input.
 */
import type { Logger } from './logger.js';

export class RateLimitedLog {
  private last = 0;
  private suppressed = 0;

  constructor(
    private readonly log: Logger,
    private readonly intervalMs = 10_000,
    private readonly now: () => number = Date.now,
  ) {}

  /** msg is built lazily so the hot path pays nothing when suppressed. */
  warn(build: () => { msg: string; fields?: Record<string, unknown> }): void {
    const t = this.now();
    if (t - this.last < this.intervalMs) {
      this.suppressed++;
      return;
    }
    const { msg, fields } = build();
    this.log.warn({ ...fields, suppressedSinceLast: this.suppressed }, msg);
    this.last = t;
    this.suppressed = 0;
  }
}
