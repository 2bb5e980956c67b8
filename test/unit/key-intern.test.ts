/**
 * The line parser's key intern table (src/parse/key-intern.ts) on its own:
 * hits compare bytes, not only hashes; the name/tag split is part of the key;
 * full-hash collisions, bounded probing, clearing when full, and key ids.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  finishHash, hashBytes, INTERN_MAX_KEY_BYTES, INTERN_MAX_PROBE, KEY_SPAN, KeyInternTable,
} from '../../src/parse/key-intern.js';

/** A raw key as the parser sees it: name bytes, then tag bytes, in one buffer with junk around. */
function raw(name: string, tags = ''): { buf: Buffer; ns: number; ne: number; ts: number; te: number } {
  const buf = Buffer.from(`##${name}:1|c|#${tags}##`, 'latin1');
  const ns = 2;
  const ne = ns + name.length;
  const ts = ne + 6; // after ":1|c|#"
  return { buf, ns, ne, ts: tags === '' ? 0 : ts, te: tags === '' ? 0 : ts + tags.length };
}

function hashOf(t: KeyInternTable, name: string, tags = ''): number {
  const r = raw(name, tags);
  return finishHash(hashBytes(r.buf, r.ns, r.ne, t.seed), hashBytes(r.buf, r.ts, r.te, t.seed));
}

function find(t: KeyInternTable, name: string, tags = '', hash = hashOf(t, name, tags)): string | undefined {
  const r = raw(name, tags);
  return t.get(r.buf, r.ns, r.ne, r.ts, r.te, hash);
}

function add(t: KeyInternTable, name: string, tags: string, key: string, hash = hashOf(t, name, tags)): number {
  const r = raw(name, tags);
  return t.add(r.buf, r.ns, r.ne, r.ts, r.te, hash, key);
}

test('a key is found by its bytes after add, and only then', () => {
  const t = new KeyInternTable({ seed: 1 });
  assert.equal(find(t, 'a.b'), undefined);
  const e = add(t, 'a.b', '', 'a.b');
  assert.equal(e, 0);
  assert.equal(find(t, 'a.b'), 'a.b');
  assert.equal(t.nameOf(e), 'a.b');
  assert.equal(find(t, 'a.c'), undefined);
  assert.equal(find(t, 'a.b', 'x'), undefined);
  assert.equal(t.size, 1);
});

test('the name/tag split is part of the key, even when the hash collides', () => {
  const t = new KeyInternTable({ seed: 7 });
  const h = 12345;
  add(t, 'ab', '', 'ab', h);
  add(t, 'a', 'b', 'a;b', h);
  add(t, '', 'ab', ';ab', h);
  assert.equal(find(t, 'ab', '', h), 'ab');
  assert.equal(find(t, 'a', 'b', h), 'a;b');
  assert.equal(find(t, '', 'ab', h), ';ab');
  assert.equal(find(t, 'ba', '', h), undefined, 'same length, same hash, other bytes');
});

test('full-hash collisions: every key in one probe run is found; past the probe bound a key is just not interned', () => {
  const t = new KeyInternTable({ seed: 3 });
  const h = 0x5a5a5a5a | 0;
  const stored: string[] = [];
  for (let i = 0; i < INTERN_MAX_PROBE + 8; i++) {
    const name = `collide.${i}`;
    if (add(t, name, '', `key:${name}`, h) >= 0) stored.push(name);
  }
  assert.equal(stored.length, INTERN_MAX_PROBE, 'probe runs are bounded');
  for (const name of stored) assert.equal(find(t, name, '', h), `key:${name}`);
  assert.equal(find(t, `collide.${INTERN_MAX_PROBE + 7}`, '', h), undefined);
  // A different hash still lands beside the run and is found.
  add(t, 'other', '', 'other');
  assert.equal(find(t, 'other'), 'other');
});

test('real FNV-1a collisions between names (found by search with a fixed seed) keep both keys apart', () => {
  const t = new KeyInternTable({ seed: 0x811c9dc5 });
  const seen = new Map<number, string>();
  let pair: [string, string] | null = null;
  for (let i = 0; pair === null && i < 2_000_000; i++) {
    const name = `n${i}`;
    const h = hashOf(t, name);
    const prev = seen.get(h);
    if (prev !== undefined) pair = [prev, name];
    else seen.set(h, name);
  }
  assert.ok(pair, 'a 32-bit collision within 2M names');
  const [a, b] = pair;
  assert.equal(hashOf(t, a), hashOf(t, b));
  add(t, a, '', `A:${a}`);
  assert.equal(find(t, b), undefined, 'same hash, other bytes: a miss');
  add(t, b, '', `B:${b}`);
  assert.equal(find(t, a), `A:${a}`);
  assert.equal(find(t, b), `B:${b}`);
});

test('grows to its full size and keeps every key', () => {
  const t = new KeyInternTable({ seed: 11 });
  const n = 100_000; // INTERN_MAX_ENTRIES: the table at its most loaded
  for (let i = 0; i < n; i++) assert.ok(add(t, `m.${i}`, i % 3 === 0 ? `k:${i % 7}` : '', `key${i}`) >= 0, `m.${i}`);
  assert.equal(t.size, n);
  for (let i = 0; i < n; i++) assert.equal(find(t, `m.${i}`, i % 3 === 0 ? `k:${i % 7}` : ''), `key${i}`);
  assert.equal(t.clears, 0);
});

test('clears itself when it holds maxEntries keys, and starts a new key-id generation', () => {
  const t = new KeyInternTable({ seed: 5, maxEntries: 4 });
  const ids = ['a', 'b', 'c', 'd'].map((n) => t.keyBase + add(t, n, '', n));
  assert.deepEqual(ids, [0, 1, 2, 3].map((e) => t.keyBase + e));
  const before = t.keyBase;
  const e = add(t, 'e', '', 'e');
  assert.equal(t.clears, 1);
  assert.equal(t.size, 1);
  assert.equal(e, 0);
  assert.notEqual(t.keyBase, before, 'a new generation: entry 0 has a new key id');
  assert.equal((t.keyBase - before + 2 ** 30) % KEY_SPAN, 0);
  assert.equal(find(t, 'a'), undefined);
  assert.equal(find(t, 'e'), 'e');
});

test('clears itself when the raw bytes pass maxArenaBytes; overlong raw keys are never held', () => {
  const t = new KeyInternTable({ seed: 9, maxArenaBytes: 2 * INTERN_MAX_KEY_BYTES });
  const long = 'x'.repeat(INTERN_MAX_KEY_BYTES - 10);
  add(t, long + 'a', '', 'a');
  assert.equal(t.clears, 0);
  add(t, long + 'b', '', 'b');
  assert.equal(t.clears, 0);
  add(t, long + 'c', '', 'c');
  assert.equal(t.clears, 1, 'the third would pass the arena cap');
  assert.equal(find(t, long + 'c'), 'c');
  assert.equal(find(t, long + 'a'), undefined);
  assert.equal(add(t, 'y'.repeat(INTERN_MAX_KEY_BYTES + 1), '', 'y'), -1);
  assert.equal(add(t, 'y'.repeat(INTERN_MAX_KEY_BYTES - 3), 'abcd', 'y'), -1, 'name + tags count together');
});

test('tables get distinct key-id generations', () => {
  const a = new KeyInternTable();
  const b = new KeyInternTable();
  assert.notEqual(a.keyBase, b.keyBase);
  assert.equal(Math.abs(a.keyBase - b.keyBase) % KEY_SPAN, 0);
  assert.ok(a.keyBase + KEY_SPAN <= 2 ** 30 && b.keyBase + KEY_SPAN <= 2 ** 30, 'ids stay small integers');
});

test('doubles its limits instead of clearing while its names keep repeating, up to the caps', () => {
  const t = new KeyInternTable({ seed: 13, maxEntries: 4, maxEntriesCap: 16 });
  const names = Array.from({ length: 20 }, (_, i) => `n.${i}`);
  // Each name is looked up (a miss), added, then hit a few times: a working set that repeats.
  const visit = (n: string) => {
    if (find(t, n) === undefined) add(t, n, '', n);
    for (let k = 0; k < 3; k++) find(t, n);
  };
  for (const n of names.slice(0, 12)) visit(n);
  assert.equal(t.clears, 0, 'no clear while it may grow');
  assert.equal(t.grows, 2, '4 -> 8 -> 16');
  assert.equal(t.size, 12);
  for (const n of names.slice(0, 12)) assert.equal(find(t, n), n, 'every key kept across the growth');
  for (const n of names.slice(12)) visit(n);
  assert.equal(t.grows, 2, 'not past maxEntriesCap');
  assert.equal(t.clears, 1, 'at the cap it clears as before');
  assert.ok(t.size <= 16);
});

test('a flood of names seen once clears and rests, never grows', () => {
  const t = new KeyInternTable({ seed: 17, maxEntries: 4, maxEntriesCap: 1024, restLookups: 8 });
  for (let i = 0; i < 5; i++) {
    const n = `once.${i}`;
    if (find(t, n) === undefined) add(t, n, '', n);
  }
  assert.equal(t.grows, 0);
  assert.equal(t.clears, 1);
  assert.equal(t.rests, 1);
});

test('grows from the defaults past 100k repeating names without a clear', () => {
  const t = new KeyInternTable({ seed: 19 });
  const n = 150_000;
  // Every name looked up three times a round: the first lookup misses once, the others hit.
  for (let round = 0; round < 2; round++) {
    for (let i = 0; i < n; i++) {
      const name = `g.${i}`;
      if (find(t, name) === undefined) add(t, name, '', name);
      find(t, name);
      find(t, name);
    }
  }
  assert.equal(t.clears, 0);
  assert.equal(t.grows, 1);
  assert.equal(t.size, n);
});
