/**
 * What the statsd line parser hands its accepted samples to. The parser
 * calls exactly one of these per value of a well-formed line, after the
 * whole line was validated, so a bad line never half-lands.
 *
 * `key`, when given and >= 0, is the id of name's entry in the parser's
 * intern table (parse/key-intern.ts), a small integer: a sink may cache
 * per-name state by it and skip hashing the name (Batch does), as long as it
 * confirms the name it finds (ids are reused after many table generations).
 * A sink that forwards samples under another name (a prefix) must not forward
 * the key; one that ignores it is always correct.
 */
export interface SampleSink {
  /** value already parsed; rate in (0, 1]; statsd adds value * (1 / rate). */
  counter(name: string, value: number, rate: number, key?: number): void;
  /** delta: the value had a leading '+' or '-' (statsd gauge delta). */
  gauge(name: string, value: number, delta: boolean, key?: number): void;
  /** `ms`, `h` and `d` samples; statsd counts 1 / rate per sample. */
  timer(name: string, value: number, rate: number, key?: number): void;
  set(name: string, member: string): void;
}
