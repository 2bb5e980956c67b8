/**
 * One flush period's aggregated state, as read back from Redis by the leader
 * (and with idle "known" names already filled in with empty values when the
 * statsd delete* options say they are re-emitted). Pure input to compute and
 * encode: no I/O, no clock.
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

/** statsd's `statsd_metrics` plus the graphite backend's own status. */
export interface FlushSelfStats {
  /** ms spent computing the period (statsd's processing_time). */
  readonly processingTime: number;
  readonly graphite: {
    readonly last_exception: number;
    readonly last_flush: number;
    readonly flush_time: number;
    readonly flush_length: number;
  };
}
