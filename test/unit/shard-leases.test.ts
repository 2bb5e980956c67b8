import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { liveTokens, rankFor, rendezvousScore, shardsOf, STALE_TTLS } from '../../src/flush/shard-leases.js';

const tokens = (n: number, tag = 't'): string[] => Array.from({ length: n }, (_, i) => `${tag}-${i}-0f8e2c4a-9b1d-4c77-8a55-${String(i).padStart(12, '0')}`);

describe('shard leases: rendezvous ranking', () => {
  it('a score is stable: same token and shard, same score; another shard, another score', () => {
    assert.equal(rendezvousScore('abc', 3), rendezvousScore('abc', 3));
    assert.notEqual(rendezvousScore('abc', 3), rendezvousScore('abc', 4));
    assert.ok(Number.isSafeInteger(rendezvousScore('abc', 3)));
  });

  it('the ranking does not depend on the order tokens are listed in, and ignores repeats', () => {
    const ts = tokens(5);
    for (let s = 0; s < 16; s++) {
      const r = rankFor(ts, s);
      assert.deepEqual(rankFor([...ts].reverse(), s), r);
      assert.deepEqual(rankFor([...ts, ...ts], s), r);
      assert.deepEqual([...r].sort(), [...ts].sort());
    }
  });

  it('every shard has exactly one first, and the shards spread over the processes', () => {
    const ts = tokens(3);
    const count = 48;
    const owned = ts.map((t) => shardsOf(t, ts, count));
    assert.deepEqual(owned.flat().sort((a, b) => a - b), Array.from({ length: count }, (_, i) => i));
    for (const o of owned) assert.ok(o.length >= 6, `each of 3 processes leads a share of 48 shards: ${owned.map((x) => x.length).join(', ')}`);
  });

  it('a process joining takes shards only from the others (each moved shard goes to it), and leaving gives back exactly those', () => {
    const before = tokens(3);
    const joiner = 'joiner-5b1e3c8f-1f60-4f1b-9d7e-3c2f6f0a9e11';
    const after = [...before, joiner];
    const count = 64;
    const moved: number[] = [];
    for (let s = 0; s < count; s++) {
      const a = rankFor(before, s)[0];
      const b = rankFor(after, s)[0];
      if (a !== b) {
        assert.equal(b, joiner, `shard ${s} moved from ${a} to ${b}, not to the joiner`);
        moved.push(s);
      }
    }
    assert.deepEqual(moved, shardsOf(joiner, after, count));
    assert.ok(moved.length > 0 && moved.length < count / 2, `the joiner takes a share, not all: ${moved.length} of ${count}`);
    // A process that dies: only its shards move, each to the one ranked second for it.
    const dead = before[0] as string;
    const survivors = after.filter((t) => t !== dead);
    for (let s = 0; s < count; s++) {
      const r = rankFor(after, s);
      assert.equal(rankFor(survivors, s)[0], r[0] === dead ? r[1] : r[0]);
    }
  });

  it('shardsOf counts the asking token in even when it is not listed (its own entry unread yet)', () => {
    const ts = tokens(2);
    const me = 'me-1c9d1b8e-a2a3-4d3b-8f2e-1234567890ab';
    assert.deepEqual(shardsOf(me, ts, 16), shardsOf(me, [...ts, me], 16));
    assert.deepEqual(shardsOf(me, [], 4), [0, 1, 2, 3]);
  });
});

describe('shard leases: live and stale flushers', () => {
  it('live within one leaseTtl of the heartbeat; removed past STALE_TTLS leaseTtl; in between neither', () => {
    const now = 1_000_000;
    const ttl = 3000;
    const { live, stale } = liveTokens(
      { fresh: String(now - 100), edge: String(now - ttl), old: String(now - ttl - 1), dead: String(now - STALE_TTLS * ttl - 1), junk: 'x' },
      now,
      ttl,
    );
    assert.deepEqual(live.sort(), ['edge', 'fresh']);
    assert.deepEqual(stale.sort(), ['dead', 'junk']);
  });
});
