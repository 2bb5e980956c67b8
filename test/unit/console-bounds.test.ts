/** The console's pure pieces: line framing, the loopback predicate, the streamed util.inspect listing. */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { inspect } from 'node:util';
import { CommandFramer } from '../../src/admin/command-framer.js';
import { changesState } from '../../src/admin/console.js';
import { type ListingOut, writeListing, writeWhenReady } from '../../src/admin/inspect-stream.js';
import { isLoopback } from '../../src/admin/loopback.js';

describe('CommandFramer', () => {
  const input = Buffer.from('help\nhealth down\r\n\ncounters\nstats');
  const expected = ['help', 'health down\r', '', 'counters'];

  test('split at every byte boundary gives the same commands', () => {
    for (let i = 0; i <= input.length; i++) {
      const f = new CommandFramer(64);
      const got = [...(f.push(input.subarray(0, i)) ?? ['null']), ...(f.push(input.subarray(i)) ?? ['null'])];
      assert.deepEqual(got, expected, `split at ${i}`);
      assert.deepEqual(f.push(Buffer.from('\n')), ['stats'], `split at ${i}: the held tail`);
    }
  });

  test('one byte at a time', () => {
    const f = new CommandFramer(64);
    const got: string[] = [];
    for (const b of input) got.push(...(f.push(Buffer.from([b])) ?? ['null']));
    assert.deepEqual(got, expected);
  });

  test('a line over the cap is refused, terminated or not', () => {
    assert.deepEqual(new CommandFramer(8).push(Buffer.from('12345678\n')), ['12345678']);
    assert.equal(new CommandFramer(8).push(Buffer.from('123456789\n')), null);
    const f = new CommandFramer(8);
    assert.deepEqual(f.push(Buffer.from('12345')), []);
    assert.equal(f.push(Buffer.from('6789')), null, 'no newline yet, already too long');
  });
});

describe('isLoopback', () => {
  test('loopback spellings', () => {
    for (const a of ['127.0.0.1', '127.1.2.3', '127.255.255.255', '::1', '::ffff:127.0.0.1', '::FFFF:127.9.9.9', '0:0:0:0:0:0:0:1']) {
      assert.equal(isLoopback(a), true, a);
    }
  });
  test('everything else', () => {
    for (const a of [undefined, '', '10.0.0.1', '128.0.0.1', '::ffff:10.0.0.1', '::2', 'fe80::1', '1127.0.0.1', '127.0.0.1.5', '::ffff:127.0.0.1x']) {
      assert.equal(isLoopback(a), false, String(a));
    }
  });
});

test('changesState: del* and health up|down, not reads', () => {
  assert.equal(changesState('delcounters', ['a.*']), true);
  assert.equal(changesState('deltimers', []), true);
  assert.equal(changesState('delgauges', ['x']), true);
  assert.equal(changesState('health', ['DOWN']), true);
  assert.equal(changesState('health', ['up']), true);
  assert.equal(changesState('health', []), false);
  assert.equal(changesState('counters', []), false);
  assert.equal(changesState('stats', []), false);
});

/** Collects a listing written in pieces; the buffer is "full" every other write, to exercise the drain wait. */
class FakeOut implements ListingOut {
  destroyed = false;
  pieces: string[] = [];
  private listeners = new Map<string, () => void>();
  write(text: string): boolean {
    this.pieces.push(text);
    const full = this.pieces.length % 2 === 0;
    if (full) setImmediate(() => this.listeners.get('drain')?.());
    return !full;
  }
  once(event: 'drain' | 'close', fn: () => void): this {
    this.listeners.set(event, fn);
    return this;
  }
  off(event: 'drain' | 'close'): this {
    this.listeners.delete(event);
    return this;
  }
  destroy(): void {
    this.destroyed = true;
  }
}

test('writeWhenReady: a client that never reads is closed after the timeout, and the wait ends', async () => {
  let destroyed = false;
  const stuck: ListingOut = {
    destroyed: false,
    write: () => false,
    once: () => undefined,
    off: () => undefined,
    destroy: () => {
      destroyed = true;
    },
  };
  const t0 = Date.now();
  await writeWhenReady(stuck, 'x'.repeat(100), 50);
  assert.equal(destroyed, true);
  assert.ok(Date.now() - t0 >= 45, 'not before the timeout');
});

describe('writeListing prints exactly util.inspect(obj) + "\\nEND\\n\\n"', () => {
  const cases: Array<[string, Record<string, unknown>]> = [
    ['empty', {}],
    ['small counters', { 'statsd.bad_lines_seen': 1, 'con.a': 5 }],
    ['small timers', { 'con.t': [3, 4], x: [] }],
    ['small sets', { 'con.s': ['x', "it's"] }],
  ];
  const big: Record<string, unknown> = {};
  for (let i = 0; i < 20_000; i++) big[`cs.${i}`] = i % 7 === 0 ? 0.5 : i;
  big['123'] = 1; // integer-like keys come first in an object, in inspect and here
  big['plain_identifier'] = -2;
  cases.push(['20k counters', big]);
  const timers: Record<string, unknown> = {};
  for (let i = 0; i < 300; i++) timers[`t.${i}`] = Array.from({ length: i % 150 }, (_, j) => j * 1.5);
  timers['long.name.'.repeat(20)] = [1e21, -0, NaN];
  cases.push(['300 timers, some past 100 values', timers]);
  const sets: Record<string, unknown> = {};
  for (let i = 0; i < 200; i++) sets[`s.${i}`] = Array.from({ length: i % 9 }, (_, j) => `m'${j}\n"`);
  cases.push(['200 sets with quotes', sets]);

  for (const [name, obj] of cases) {
    test(name, async () => {
      const out = new FakeOut();
      await writeListing(out, obj);
      assert.equal(out.pieces.join(''), `${inspect(obj)}\nEND\n\n`);
      if (Object.keys(obj).length > 10_000) assert.ok(out.pieces.length > 2, 'a large listing goes out in pieces');
    });
  }
});
