/**
 * src/store/shards.ts: the name -> shard map is part of the stored format (a
 * name's keys depend on it), so its hash is pinned here; a change of it must
 * fail this test, not silently move every name of a running state.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import calculateSlot from 'cluster-key-slot';
import { MAX_SHARDS, ShardMap, shardHash, shardTags, SLOTS } from '../../src/store/shards.js';

describe('shard map', () => {
  it('hashes names with 32-bit FNV-1a (pinned values, published test vectors included)', () => {
    // FNV-1a test vectors (Fowler/Noll/Vo): '' -> offset basis, 'a' -> 0xe40c292c, 'foobar' -> 0xbf9cf968.
    assert.equal(shardHash(''), 0x811c9dc5);
    assert.equal(shardHash('a'), 0xe40c292c);
    assert.equal(shardHash('foobar'), 0xbf9cf968);
    assert.equal(shardHash('api.requests'), 1981630789);
    assert.equal(shardHash('foo.bar;env=prod'), 4098741258);
    assert.equal(shardHash('ünïcode.name'), 2724908794);
  });

  it('pins a few names to their shard of 16', () => {
    const m = new ShardMap(16);
    const pinned: Array<[string, number]> = [
      ['a', 12],
      ['api.requests', 5],
      ['foo.bar;env=prod', 10],
      ['stats.counters.x', 1],
      ['', 5],
      ['ünïcode.name', 10],
    ];
    for (const [name, shard] of pinned) assert.equal(m.of(name), shard, JSON.stringify(name));
  });

  it('keeps the layout from before shards with one shard: tag "0", every name in shard 0', () => {
    const m = new ShardMap(1);
    assert.deepEqual(m.tags, ['0']);
    for (const name of ['a', 'api.requests', 'x'.repeat(300)]) assert.equal(m.of(name), 0);
  });

  it('gives shard i of S a hash tag whose slot lies in the i-th of S equal bands of the 16,384 slots', () => {
    for (const count of [2, 3, 5, 16, 64, 1024]) {
      const tags = shardTags(count);
      assert.equal(tags.length, count);
      assert.equal(new Set(tags).size, count, 'distinct tags');
      for (let i = 0; i < count; i++) {
        const slot = calculateSlot(tags[i] as string);
        const lo = Math.floor((i * SLOTS) / count);
        const hi = Math.floor(((i + 1) * SLOTS) / count);
        assert.ok(slot >= lo && slot < hi, `S=${count}: shard ${i}'s tag ${tags[i]} is in slot ${slot}, outside [${lo}, ${hi})`);
      }
    }
    // Pinned: the tags name the keys of a running state.
    assert.deepEqual(shardTags(16), ['0-8', '1-68', '2-43', '3-48', '4-13', '5-18', '6-20', '7-38', '8-43', '9-48', '10-3', '11-0', '12-19', '13-12', '14-48', '15-43']);
  });

  it('refuses a shard count outside 1..MAX_SHARDS', () => {
    for (const bad of [0, -1, 1.5, MAX_SHARDS + 1, Number.NaN]) assert.throws(() => new ShardMap(bad), RangeError);
  });

  it('spreads 100,000 names over 16 shards within 5 % of the mean', () => {
    const m = new ShardMap(16);
    const counts = new Array<number>(16).fill(0);
    const n = 100_000;
    // Names shaped like real ones: long shared prefixes, numbered hosts and endpoints, some tags.
    for (let i = 0; i < n; i++) {
      const name = i % 3 === 0 ? `servers.web-${i % 997}.api.requests.${i}` : i % 3 === 1 ? `app.checkout.step${i}.latency;region=eu-${i % 7}` : `q${i}`;
      counts[m.of(name)]! += 1;
    }
    const mean = n / 16;
    for (let s = 0; s < 16; s++) {
      const c = counts[s] as number;
      assert.ok(Math.abs(c - mean) <= 0.05 * mean, `shard ${s} holds ${c} names, mean ${mean}: ${counts.join(' ')}`);
    }
  });
});
