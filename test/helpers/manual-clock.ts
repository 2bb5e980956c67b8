/**
 * A Clock for tests: time moves only when the test says so, and timers fire
 * only from advance(). Starts at the given wall time.
 */
import type { Clock } from '../../src/clock.js';

interface Pending {
  at: number;
  fn: () => void;
  handle: NodeJS.Timeout;
}

export class ManualClock implements Clock {
  private timers: Pending[] = [];

  constructor(private t: number = Date.now()) {}

  now(): number {
    return this.t;
  }

  setTimeout(fn: () => void, ms: number): NodeJS.Timeout {
    // A real (unref'd, never armed) handle, so callers can keep and clear it like any other.
    const handle = setTimeout(() => undefined, 0x7fffffff);
    handle.unref();
    clearTimeout(handle);
    this.timers.push({ at: this.t + Math.max(0, ms), fn, handle });
    return handle;
  }

  clearTimeout(h: NodeJS.Timeout): void {
    this.timers = this.timers.filter((p) => p.handle !== h);
  }

  /** Timers waiting to fire. */
  get pending(): number {
    return this.timers.length;
  }

  /** Moves time forward by ms without firing any timer: for a test that drives every step itself. */
  jump(ms: number): void {
    this.t += ms;
  }

  /** Moves time forward by ms, firing every timer that comes due, in order (timers they set included). */
  advance(ms: number): void {
    const end = this.t + ms;
    for (;;) {
      this.timers.sort((a, b) => a.at - b.at);
      const next = this.timers[0];
      if (!next || next.at > end) break;
      this.timers.shift();
      this.t = Math.max(this.t, next.at);
      next.fn();
    }
    this.t = end;
  }
}
