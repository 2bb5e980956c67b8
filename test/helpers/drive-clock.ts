/**
 * Driving flushers that run on a ManualClock against a real Redis: time moves
 * only in run()'s steps, and the Redis round trips a step starts get real
 * time to finish before the next; until() waits, in real time, for what they
 * lead to.
 */
import type { ManualClock } from './manual-clock.js';

/** Waits (polling every 10 ms) until pred holds; throws naming `what` after timeoutMs. */
export async function until(what: string, pred: () => Promise<boolean> | boolean, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await pred())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

/** Moves the clock forward in steps of stepMs, letting the flushers' Redis round trips finish between steps. */
export async function run(clock: ManualClock, ms: number, stepMs = 100): Promise<void> {
  for (let done = 0; done < ms; done += stepMs) {
    clock.advance(Math.min(stepMs, ms - done));
    await new Promise((r) => setTimeout(r, 15));
  }
}
