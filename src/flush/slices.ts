/**
 * Long flush work (a period with a million names) is written as generators
 * that yield every SLICE entries; runSliced runs one, giving the event loop a
 * turn between slices, so the flush thread keeps renewing its lease and
 * answering while it computes. runSync runs the same generator in one go
 * (tests, and callers that want a plain function).
 */
import { setImmediate as nextTurn } from 'node:timers/promises';

/** Entries (names, lines) handled between two turns of the event loop: a few ms of work. */
export const SLICE = 8192;

export type Sliced<T> = Generator<void, T, void>;

export function runSync<T>(g: Sliced<T>): T {
  let r = g.next();
  while (!r.done) r = g.next();
  return r.value;
}

/** Runs g to the end, yielding to the event loop between slices. busyMs excludes the time spent waiting for turns. */
export async function runSliced<T>(g: Sliced<T>, now: () => number = Date.now): Promise<{ value: T; busyMs: number }> {
  let busyMs = 0;
  for (;;) {
    const t = now();
    const r = g.next();
    busyMs += now() - t;
    if (r.done) return { value: r.value, busyMs };
    await nextTurn();
  }
}
