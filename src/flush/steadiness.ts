/**
 * The leader's view of its shard's Redis, for closePeriod-8's verdict on
 * members: a member whose heartbeat is older than a member's ttl is dead,
 * unless the leader's own view of the shard became steady within that ttl.
 * A member's reports stop with the shard's master (killed and failing over,
 * paused, unreachable), and so do the leader's commands; after such an
 * outage every member gets a full ttl to report again.
 *
 * The view is steady while every small command the leader sends the shard
 * (lease checks, the close loop's reads, closes) is answered within a
 * quarter of the ttl, none fails, and the answers come no further apart
 * than a lease check's cadence (a third of the ttl) plus that. A command
 * that failed, or one answered late, makes the view steady again only from
 * the next answer on. Why this suffices: a member reports at least every
 * third of the ttl (batcher.ts), so its heartbeat grows older than the ttl
 * only after its reports failed to land for two thirds of it. The leader
 * checks its lease every third of the ttl, so during such an outage one of
 * its checks fails, or waits (answered or still waiting) longer than a
 * quarter of the ttl; each is seen here. (leaseTtl is at least 500 ms, so
 * the bounds stay apart.)
 *
 * The verdict is taken with the close's send time: a close that waits in a
 * queue through an outage judges the members as they were when it was sent.
 */
import type { Clock } from '../clock.js';

export class Steadiness {
  /** A command answered later than this after it was sent (ms) means the shard was not steady. */
  readonly latencyLimitMs: number;
  /** Answers further apart than this (ms) mean the shard was not steady. */
  readonly gapLimitMs: number;
  private since = 0;
  private lastAnswer = 0;
  /** A command failed since the last answer: the next answer starts a new steady stretch. */
  private failedSinceAnswer = false;
  private seq = 0;
  /** Commands sent and not answered yet: id -> when sent. */
  private readonly inFlight = new Map<number, number>();

  constructor(ttlMs: number, private readonly clock: Clock) {
    this.latencyLimitMs = Math.max(25, Math.floor(ttlMs / 4));
    this.gapLimitMs = Math.max(100, Math.floor(ttlMs / 3)) + this.latencyLimitMs;
  }

  /** Runs one of the leader's small commands to the shard, noting when it was sent and answered. */
  async track<T>(command: () => Promise<T>): Promise<T> {
    const id = ++this.seq;
    const sent = this.clock.now();
    this.inFlight.set(id, sent);
    try {
      const out = await command();
      this.answered(sent);
      return out;
    } catch (err) {
      this.failedSinceAnswer = true;
      throw err;
    } finally {
      this.inFlight.delete(id);
    }
  }

  private answered(sentMs: number): void {
    const now = this.clock.now();
    if (this.lastAnswer === 0 || this.failedSinceAnswer || now - sentMs > this.latencyLimitMs || now - this.lastAnswer > this.gapLimitMs) this.since = now;
    this.failedSinceAnswer = false;
    this.lastAnswer = Math.max(this.lastAnswer, now);
  }

  /**
   * Since when (ms) the view has been steady, as of nowMs: nowMs itself while no answer came lately or a command
   * has waited too long.
   */
  steadySince(nowMs: number): number {
    if (this.lastAnswer === 0 || this.failedSinceAnswer || nowMs - this.lastAnswer > this.gapLimitMs) return nowMs;
    for (const sent of this.inFlight.values()) if (nowMs - sent > this.latencyLimitMs) return nowMs;
    return this.since;
  }
}
