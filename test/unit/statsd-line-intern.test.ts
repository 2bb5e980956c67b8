/**
 * The line parser with its key intern table: a line whose key was seen
 * before must give exactly what a fresh parser gives, whatever was parsed in
 * between (bad lines, other keys, a table that cleared itself).
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { SampleSink } from '../../src/parse/sample-sink.js';
import * as L from '../../src/parse/statsd-line.js';

type Call = [kind: 'c' | 'g' | 't' | 's', name: string, value: number | string, extra: number | boolean, key: number];

function recorder(): SampleSink & { calls: Call[] } {
  const calls: Call[] = [];
  return {
    calls,
    counter: (name, value, rate, key = -1) => void calls.push(['c', name, value, rate, key]),
    gauge: (name, value, delta, key = -1) => void calls.push(['g', name, value, delta, key]),
    timer: (name, value, rate, key = -1) => void calls.push(['t', name, value, rate, key]),
    set: (name, member) => void calls.push(['s', name, member, false, -1]),
  };
}

/** Parses one line with parser; status and calls without key ids. */
function run(parser: L.StatsdLineParser, line: string): { status: number; calls: Call[] } {
  const sink = recorder();
  const buf = Buffer.from(`-+:|${line}-+:|`, 'utf8');
  const status = parser.parseLine(buf, 4, buf.length - 4, sink);
  return { status, calls: sink.calls };
}

function withoutKeys(calls: Call[]): unknown[] {
  return calls.map((c) => c.slice(0, 4));
}

const lines = [
  'a:1|c', 'a:2|c|@0.5', 'a:1|c|#k:v,flag', 'a:1|c|#flag,k:v', 'a:1|c|#k:v', 'a:3|ms|#k:v', 'a:+4|g|#k:v',
  'a.b:1|c', 'a.b:x|s', 'ab:1|c', 'a:1|c|#b', 'my key/with stuff!:1|c', 'my key/with stuff!:2|ms',
  'm:1|c:2|ms:+3|g:x|s|#t:v', 'é€:1|g', 'a:1|c|#k;x:y:z', 'a:1|c|#t:v \r', 'a:1|c|#', 'u:|s',
];

test('a repeated key gives what a fresh parser gives, for sanitize on and off', () => {
  for (const keyNameSanitize of [true, false]) {
    const shared = new L.StatsdLineParser({ keyNameSanitize });
    for (let round = 0; round < 3; round++) {
      for (const line of lines) {
        const fresh = run(new L.StatsdLineParser({ keyNameSanitize }), line);
        const again = run(shared, line);
        assert.equal(again.status, fresh.status, line);
        assert.deepEqual(withoutKeys(again.calls), withoutKeys(fresh.calls), `${line} (sanitize ${keyNameSanitize}, round ${round})`);
      }
    }
    // One entry per distinct raw key region: 'a:1|c' and 'a:2|c|@0.5' share one; '#k:v,flag' and '#flag,k:v' do not.
    assert.ok(shared.intern.size > 5 && shared.intern.size < lines.length, `${shared.intern.size} keys`);
  }
});

test('sanitize on and off give different keys for the same bytes', () => {
  const on = new L.StatsdLineParser({ keyNameSanitize: true });
  const off = new L.StatsdLineParser({ keyNameSanitize: false });
  for (let i = 0; i < 2; i++) {
    assert.equal(run(on, 'a b/c!:1|c|#k:v w').calls[0]![1], 'a_b-c;k=v_w');
    assert.equal(run(off, 'a b/c!:1|c|#k:v w').calls[0]![1], 'a b/c!;k=v w');
  }
});

test('a key first seen in a malformed line, then in well-formed ones, then malformed again', () => {
  const p = new L.StatsdLineParser({ keyNameSanitize: true, maxNameLength: 8 });
  const sequence: [string, number, string | null][] = [
    ['a:x|c', L.LINE_BAD_VALUE, null],
    ['a:1|c|#t,', L.LINE_BAD_TAGS, null],
    ['a:1|c|#t,,u', L.LINE_BAD_TAGS, null],
    ['a:1|c|#t', L.LINE_OK, 'a;t'],
    ['a:1|c|#t,', L.LINE_BAD_TAGS, null],
    ['a:1|q|#t', L.LINE_BAD_TYPE, null],
    ['a:1|c|#t', L.LINE_OK, 'a;t'],
    ['a:x|c', L.LINE_BAD_VALUE, null],
    ['a:1|c', L.LINE_OK, 'a'],
    ['%%%:1|c', L.LINE_EMPTY_NAME, null],
    ['%%%:1|c', L.LINE_EMPTY_NAME, null],
    ['abcdefghi:1|c', L.LINE_NAME_TOO_LONG, null],
    ['abcdefghi:1|c', L.LINE_NAME_TOO_LONG, null],
    ['abcdefgh:1|c', L.LINE_OK, 'abcdefgh'],
    ['abc:1|c|#k:vvv', L.LINE_NAME_TOO_LONG, null],
    ['abc:1|c|#k:vv', L.LINE_OK, 'abc;k=vv'],
    ['abc:1|c|#k:vvv', L.LINE_NAME_TOO_LONG, null],
  ];
  for (const [line, status, name] of sequence) {
    const r = run(p, line);
    assert.equal(L.statusText(r.status), L.statusText(status), line);
    assert.deepEqual(r.calls.map((c) => c[1]), name === null ? [] : [name], line);
  }
  assert.equal(p.intern.size, 4, 'only well-formed keys are interned');
});

test('key ids: one per raw key, stable while the table lives, new after it clears', () => {
  const p = new L.StatsdLineParser({ keyNameSanitize: true, intern: { maxEntries: 3 } });
  const key = (line: string) => run(p, line).calls[0]![4];
  const a = key('a:1|c');
  assert.ok(a >= 0);
  assert.equal(key('a:5|ms|@0.5'), a, 'the type, value and rate are not part of the key');
  const b = key('a:1|c|#t');
  assert.notEqual(b, a);
  const c = key('c:1|g');
  assert.deepEqual([key('a:1|c'), key('a:1|c|#t'), key('c:2|g')], [a, b, c]);
  const d = key('d:1|c'); // the fourth key clears the table
  assert.equal(p.intern.clears, 1);
  assert.ok(![a, b, c].includes(d));
  const a2 = key('a:1|c');
  assert.ok(![a, b, c, d].includes(a2), 'a key from the cleared generation is never reused for another name');
  assert.equal(run(p, 'a:1|c').calls[0]![1], 'a');
});

test('a flood of unique names keeps the table bounded and every key right', () => {
  const p = new L.StatsdLineParser({ keyNameSanitize: true, intern: { maxEntries: 64, restLookups: 0 } });
  for (let round = 0; round < 2; round++) {
    const sink = recorder();
    const text = Array.from({ length: 1000 }, (_, i) => `flood.${i}/x:${i}|c|#r:${round}`).join('\n');
    const buf = Buffer.from(text);
    p.parsePacket(buf, 0, buf.length, sink);
    assert.equal(sink.calls.length, 1000);
    sink.calls.forEach((c, i) => assert.deepEqual(c.slice(0, 3), ['c', `flood.${i}-x;r=${round}`, i]));
    assert.ok(p.intern.size <= 64);
  }
  assert.ok(p.intern.clears >= 30);
});

test('colliding names (same 32-bit hash, fixed seed) both parse to their own key', () => {
  // Two names whose name hash (FNV-1a from the table's seed, as the parser
  // computes it while scanning for ':') is equal: the table then holds both in
  // one probe run and only the byte compare tells them apart.
  const p = new L.StatsdLineParser({ keyNameSanitize: true, intern: { seed: 0x2545f491 } });
  const seed = p.intern.seed;
  const fnv = (s: string) => {
    let h = seed;
    for (let i = 0; i < s.length; i++) h = Math.imul(h ^ s.charCodeAt(i), 0x01000193);
    return h;
  };
  const seen = new Map<number, string>();
  let pair: [string, string] | null = null;
  for (let i = 0; pair === null && i < 2_000_000; i++) {
    const name = `c${i}`;
    const h = fnv(name);
    const prev = seen.get(h);
    if (prev !== undefined) pair = [prev, name];
    else seen.set(h, name);
  }
  assert.ok(pair);
  for (let i = 0; i < 3; i++) {
    for (const name of pair) assert.equal(run(p, `${name}:1|c`).calls[0]![1], name);
  }
  assert.notEqual(run(p, `${pair[0]}:1|c`).calls[0]![4], run(p, `${pair[1]}:1|c`).calls[0]![4]);
});

test('a generation that fills up with mostly misses makes the table rest, then intern again', () => {
  // maxEntriesCap 50: this table never grows (growth is tested below and in key-intern.test.ts).
  const p = new L.StatsdLineParser({ keyNameSanitize: true, intern: { maxEntries: 50, maxEntriesCap: 50, restLookups: 500 } });
  const sink = recorder();
  const feed = (lines: string[]) => {
    const buf = Buffer.from(lines.join('\n'));
    p.parsePacket(buf, 0, buf.length, sink);
  };
  feed(Array.from({ length: 51 }, (_, i) => `u.${i}:1|c`)); // 51 new keys: the 51st fills the table
  assert.equal(p.intern.rests, 1);
  assert.equal(p.intern.size, 0);
  feed(Array.from({ length: 400 }, (_, i) => `hot.${i % 5}:1|c`)); // resting: nothing interned, keys still right
  assert.equal(p.intern.size, 0);
  assert.ok(sink.calls.slice(51).every((c, i) => c[1] === `hot.${i % 5}` && c[4] === -1));
  feed(Array.from({ length: 200 }, (_, i) => `hot.${i % 5}:1|c`)); // the rest ends: interning again
  assert.equal(p.intern.size, 5);
  assert.equal(sink.calls.length, 651);
  assert.ok(sink.calls.slice(-100).every((c) => c[4] >= 0));
  // 45 new keys fill this generation, but it had more hits (95) than misses (50): a clear, no rest.
  feed(Array.from({ length: 51 }, (_, i) => `w.${i}:1|c`));
  assert.deepEqual([p.intern.clears, p.intern.rests, p.intern.size], [2, 1, 6]);
  // A generation of misses only: a rest of 500 again (the streak restarted), used up by 155 + 345 lookups.
  feed(Array.from({ length: 200 }, (_, i) => `x.${i}:1|c`));
  assert.deepEqual([p.intern.rests, p.intern.size], [2, 0]);
  feed(Array.from({ length: 345 }, () => 'hot.0:1|c'));
  assert.equal(p.intern.size, 0);
  // The next generation of misses in a row rests twice as long: 1000 lookups.
  feed(Array.from({ length: 51 }, (_, i) => `y.${i}:1|c`));
  assert.equal(p.intern.rests, 3);
  feed(Array.from({ length: 999 }, () => 'hot.0:1|c'));
  assert.equal(p.intern.size, 0, 'still resting after 999 lookups');
  feed(['hot.0:1|c', 'hot.0:1|c']);
  assert.equal(p.intern.size, 1);
  assert.ok(sink.calls.every((c) => /^(u|hot|w|x|y)\.\d+$/.test(c[1])));
});

test('a generation that fills up with mostly hits grows the table, and at its cap just clears, without resting', () => {
  const lines: string[] = [];
  for (let i = 0; i < 21; i++) for (let r = 0; r < 3; r++) lines.push(`k.${i}:1|c`);
  const buf = Buffer.from(lines.join('\n'));
  const capped = new L.StatsdLineParser({ keyNameSanitize: true, intern: { maxEntries: 20, maxEntriesCap: 20 } });
  capped.parsePacket(buf, 0, buf.length, recorder());
  assert.deepEqual([capped.intern.clears, capped.intern.rests, capped.intern.grows, capped.intern.size], [1, 0, 0, 1]);
  const growing = new L.StatsdLineParser({ keyNameSanitize: true, intern: { maxEntries: 20 } });
  const sink = recorder();
  growing.parsePacket(buf, 0, buf.length, sink);
  assert.deepEqual([growing.intern.clears, growing.intern.rests, growing.intern.grows, growing.intern.size], [0, 0, 1, 21]);
  assert.ok(sink.calls.slice(-3).every((c) => c[1] === 'k.20' && c[4] >= 0), 'the 21st name is interned');
});

