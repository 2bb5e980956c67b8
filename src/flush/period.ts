/**
 * One flush period's aggregated state, as read back from Redis by the leader
 * (and with idle "known" names already filled in with empty values when the
 * statsd delete* options say they are re-emitted). Pure input to
 * compute-period.ts: no I/O, no clock.
 */
export interface TimerSamples {
  /** Every sample of the period, unsorted. compute sorts it in place. */
  readonly values: number[];
  /** Sum of 1 / sampleRate over the samples (statsd's timer_counters). */
  readonly count: number;
}

export interface PeriodData {
  /** name -> sum of value * (1 / rate), in statsd's naming (tags as `name;k=v`). */
  readonly counters: ReadonlyMap<string, number>;
  readonly timers: ReadonlyMap<string, TimerSamples>;
  readonly gauges: ReadonlyMap<string, number>;
  /** name -> number of distinct members. */
  readonly sets: ReadonlyMap<string, number>;
}
