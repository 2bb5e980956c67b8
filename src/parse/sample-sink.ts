/**
 * What the statsd line parser hands its accepted samples to. The parser
 * calls exactly one of these per value of a well-formed line, after the
 * whole line was validated, so a bad line never half-lands.
 */
export interface SampleSink {
  /** value already parsed; rate in (0, 1]; statsd adds value * (1 / rate). */
  counter(name: string, value: number, rate: number): void;
  /** delta: the value had a leading '+' or '-' (statsd gauge delta). */
  gauge(name: string, value: number, delta: boolean): void;
  /** `ms`, `h` and `d` samples; statsd counts 1 / rate per sample. */
  timer(name: string, value: number, rate: number): void;
  set(name: string, member: string): void;
}
