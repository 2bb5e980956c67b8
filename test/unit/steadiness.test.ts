/**
 * Steadiness (src/flush/steadiness.ts): the leader's view of its shard's
 * Redis, on an injected clock. Steady while its commands are answered within
 * a quarter of the ttl, none fails, and answers come no further apart than a
 * lease check's cadence plus that; otherwise steady again only from the
 * answer that ends the stretch.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { Steadiness } from '../../src/flush/steadiness.js';
import { ManualClock } from '../helpers/manual-clock.js';

const TTL = 3000;

/** A command that answers when the test says so. */
function held<T>(value: T): { promise: () => Promise<T>; answer: () => void } {
  let resolve: (v: T) => void = () => undefined;
  const p = new Promise<T>((r) => (resolve = r));
  return { promise: () => p, answer: () => resolve(value) };
}

describe('Steadiness', () => {
  test('limits: a quarter of the ttl for an answer, a third plus that between answers', () => {
    const s = new Steadiness(TTL, new ManualClock(0));
    assert.equal(s.latencyLimitMs, 750);
    assert.equal(s.gapLimitMs, 1750);
  });

  test('before any answer, and from the first, steady only since then', async () => {
    const clock = new ManualClock(1_000_000);
    const s = new Steadiness(TTL, clock);
    assert.equal(s.steadySince(clock.now()), clock.now(), 'nothing answered yet');
    await s.track(() => Promise.resolve(1));
    const first = clock.now();
    clock.jump(1000);
    await s.track(() => Promise.resolve(1));
    assert.equal(s.steadySince(clock.now()), first, 'answered within the limits: steady since the first answer');
  });

  test('an answer later than the limit: steady only from that answer', async () => {
    const clock = new ManualClock(1_000_000);
    const s = new Steadiness(TTL, clock);
    await s.track(() => Promise.resolve(1));
    const start = clock.now();
    const slow = held(1);
    const done = s.track(slow.promise);
    clock.jump(700);
    assert.equal(s.steadySince(clock.now()), start, 'waiting 700 ms: within the limit');
    clock.jump(100);
    assert.equal(s.steadySince(clock.now()), clock.now(), 'waiting 800 ms: not steady now');
    slow.answer();
    await done;
    const answered = clock.now();
    clock.jump(500);
    assert.equal(s.steadySince(clock.now()), answered, 'steady from the late answer on');
  });

  test('a command that failed: not steady until the next answer, then only from it', async () => {
    const clock = new ManualClock(1_000_000);
    const s = new Steadiness(TTL, clock);
    await s.track(() => Promise.resolve(1));
    clock.jump(200);
    await assert.rejects(s.track(() => Promise.reject(new Error('Too many Cluster redirections'))));
    assert.equal(s.steadySince(clock.now()), clock.now(), 'just failed');
    clock.jump(300);
    await s.track(() => Promise.resolve(1)); // answered at once, 0.5 s after the last answer
    const back = clock.now();
    clock.jump(1000);
    await s.track(() => Promise.resolve(1));
    assert.equal(s.steadySince(clock.now()), back, 'steady from the first answer after the failure');
  });

  test('answers too far apart: steady only from the answer after the gap', async () => {
    const clock = new ManualClock(1_000_000);
    const s = new Steadiness(TTL, clock);
    await s.track(() => Promise.resolve(1));
    const start = clock.now();
    clock.jump(1750);
    assert.equal(s.steadySince(clock.now()), start, '1.75 s since the last answer: within the gap limit');
    clock.jump(1);
    assert.equal(s.steadySince(clock.now()), clock.now(), 'past it');
    await s.track(() => Promise.resolve(1));
    const back = clock.now();
    clock.jump(1000);
    await s.track(() => Promise.resolve(1));
    assert.equal(s.steadySince(clock.now()), back);
  });

  test('a lease check held through an outage just under the ttl resets it, though its answers are less than a ttl apart', async () => {
    const clock = new ManualClock(1_000_000);
    const s = new Steadiness(TTL, clock);
    await s.track(() => Promise.resolve(1)); // lease check answered
    clock.jump(1000);
    const check = held(1);
    const done = s.track(check.promise); // the next lease check, sent as Redis stops
    clock.jump(1900);
    check.answer();
    await done; // answered 2.9 s after the one before: within the old rule's ttl
    assert.equal(s.steadySince(clock.now()), clock.now(), 'held 1.9 s: steady only from its answer');
  });
});
