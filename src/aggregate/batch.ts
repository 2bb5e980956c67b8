/**
 * The in-memory fold of one batch tick: every sample a process receives
 * between two merges lands here, so Redis sees one round trip per batch no
 * matter how many packets arrived (DESIGN invariant 1). Maps keyed by the
 * final statsd name (tags included), so `constructor` is just a name.
 */
import type { SampleSink } from '../parse/sample-sink.js';

export interface GaugeOp {
  /** true: value is a delta to add to the stored gauge; false: absolute. */
  delta: boolean;
  value: number;
}

export class Batch implements SampleSink {
  readonly counters = new Map<string, number>();
  readonly timers = new Map<string, number[]>();
  readonly timerCounts = new Map<string, number>();
  readonly gauges = new Map<string, GaugeOp>();
  readonly sets = new Map<string, Set<string>>();
  /** Finished Graphite lines (`name value ts`, no newline) that bypass aggregation. */
  readonly passthroughLines: string[] = [];
  /** Samples folded in, for sizing decisions and self-metrics. */
  samples = 0;

  counter(name: string, value: number, rate: number): void {
    this.samples++;
    // statsd: counters[key] += Number(v) * (1 / sampleRate)
    this.counters.set(name, (this.counters.get(name) ?? 0) + value * (1 / rate));
  }

  gauge(name: string, value: number, delta: boolean): void {
    this.samples++;
    const op = this.gauges.get(name);
    if (op === undefined) {
      this.gauges.set(name, { delta, value });
    } else if (delta) {
      op.value += value;
    } else {
      op.delta = false;
      op.value = value;
    }
  }

  timer(name: string, value: number, rate: number): void {
    this.samples++;
    const values = this.timers.get(name);
    if (values === undefined) {
      this.timers.set(name, [value]);
    } else {
      values.push(value);
    }
    this.timerCounts.set(name, (this.timerCounts.get(name) ?? 0) + 1 / rate);
  }

  set(name: string, member: string): void {
    this.samples++;
    const members = this.sets.get(name);
    if (members === undefined) {
      this.sets.set(name, new Set([member]));
    } else {
      members.add(member);
    }
  }

  passthrough(line: string): void {
    this.samples++;
    this.passthroughLines.push(line);
  }

  get isEmpty(): boolean {
    return this.counters.size + this.timers.size + this.gauges.size + this.sets.size + this.passthroughLines.length === 0;
  }

  /** Distinct names in the batch: what a merge costs in Redis. */
  get names(): number {
    return this.counters.size + this.timers.size + this.gauges.size + this.sets.size;
  }
}
