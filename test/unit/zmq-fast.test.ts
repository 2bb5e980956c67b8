/**
 * The ZeroMQ fast reader (parse/zmq-fast.ts) against the general path
 * (JSON.parse + zmq-item.ts): whenever the fast reader takes a message, the
 * sink must get exactly what the general path gives it, and the general
 * path must find nothing wrong; it must take the usual shapes (or it would
 * be useless) and refuse everything it cannot read exactly. Checked on a
 * table of shapes and on 3,000 random messages built to hit every branch.
 * The reader's scanner is C (the native addon): it must be built under CI;
 * elsewhere these tests are skipped when it was not (tallyd then reads every
 * message through the general path: test/unit/zmq-fuzz.test.ts checks that).
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { deflateSync } from 'node:zlib';
import type { SampleSink } from '../../src/parse/sample-sink.js';
import { applyItem } from '../../src/parse/zmq-item.js';
import { nativeAddon } from '../../src/native/addon.js';
import { createFastReader, type FastReaderOptions, NOT_FAST, type ZmqFastReader } from '../../src/parse/zmq-fast.js';
import * as Z from '../../src/parse/zmq-message.js';

type Call = [kind: string, name: string, value: number | string, extra: number | boolean];

function recorder(): SampleSink & { calls: Call[]; keys: number[] } {
  const calls: Call[] = [];
  const keys: number[] = [];
  return {
    calls,
    keys,
    counter: (n, v, r, k) => {
      calls.push(['c', n, v, r]);
      keys.push(k ?? -1);
    },
    gauge: (n, v, d, k) => {
      calls.push(['g', n, v, d]);
      keys.push(k ?? -1);
    },
    timer: (n, v, r, k) => {
      calls.push(['t', n, v, r]);
      keys.push(k ?? -1);
    },
    set: (n, m) => calls.push(['s', n, m, 0]),
  };
}

const addon = nativeAddon();
const nativeMissing = typeof addon === 'string' && !process.env.CI ? `native addon not available: ${addon}` : false;

{
  describe('the fast reader (C scanner)', { skip: nativeMissing }, () => {
    function newReader(o: FastReaderOptions): ZmqFastReader {
      const r = createFastReader(o);
      assert.ok(r, 'the native addon is built');
      return r;
    }

    const OPTS: Z.FrameOptions = { keyNameSanitize: true, maxNameLength: 1024, passthrough: false, maxMessageSize: 1 << 20 };

    /** What the general path does with the text: its sink calls, or null when it finds anything wrong. */
    function general(text: string, opts: Z.FrameOptions, prefix: string): Call[] | null {
      const d = Z.decodeFrame(Buffer.from(text, 'utf8'), opts);
      if (d.status !== Z.FRAME_OK || d.format !== 'json' || d.badItems.length > 0) return null;
      const sink = recorder();
      for (const item of d.items) applyItem(item, prefix, sink);
      return sink.calls;
    }

    /** What the fast reader does: its sink calls, or null when it declines. */
    function fast(reader: ZmqFastReader, text: string): Call[] | null {
      const buf = Buffer.from(text, 'utf8');
      let at = 0;
      if (buf[0] === 0xef && buf[1] === 0xbb && buf[2] === 0xbf) at = 3;
      while (at < buf.length && ' \t\r\n'.includes(String.fromCharCode(buf[at]!))) at++;
      if (reader.read(buf, at, buf.length) === NOT_FAST) return null;
      const sink = recorder();
      reader.emit(sink);
      return sink.calls;
    }

    /** Checks the contract on one text; returns whether the fast reader took it. */
    function check(text: string, opts: Z.FrameOptions = OPTS, prefix = ''): boolean {
      const reader = newReader({ keyNameSanitize: opts.keyNameSanitize, maxNameLength: opts.maxNameLength, prefix });
      const f = fast(reader, text);
      if (f === null) return false;
      const g = general(text, opts, prefix);
      assert.notEqual(g, null, `the fast reader took what the general path rejects: ${text.slice(0, 200)}`);
      assert.deepEqual(f, g, text.slice(0, 200));
      return true;
    }

    describe('takes the usual shapes, with the same result as JSON.parse', () => {
      const taken: Array<[string, string]> = [
        ['an array of counters as JSON.stringify writes it', JSON.stringify([{ name: 'a.b', value: 1, time: 1796000000, type: 'c' }, { name: 'c', value: 2.5, time: 1796000000.25, type: 'c', rate: 0.5 }])],
        ['every type but sets', JSON.stringify(['c', 'g', 'ms', 'h', 'd'].map((type, i) => ({ name: `m.${type}`, value: i - 1 + (type === 'ms' ? 1 : 0), type })))],
        ['gauges by default, no time', JSON.stringify([{ name: 'load', value: 0.75 }])],
        ['one object', JSON.stringify({ name: 'one', value: 3, type: 'c' })],
        ['pretty-printed with tabs and CRLF', JSON.stringify([{ name: 'x', value: 1e3, type: 'c' }], null, '\t').replace(/\n/g, '\r\n')],
        ['members in any order', '[{"type":"ms","value":12.5,"name":"lat","rate":1,"time":1796000000}]'],
        ['null type, rate and time', '[{"name":"n","value":1,"type":null,"rate":null,"time":null}]'],
        ['times at the bounds and in other spellings', '[{"name":"a","value":1,"time":1},{"name":"b","value":1,"time":99999999999},{"name":"c","value":1,"time":1.7e9},{"name":"d","value":1,"time":99999999999.5},{"name":"e","value":1,"time":5E3}]'],
        ['members the general path ignores', '[{"name":"x","host":"web-1","pid":123,"ok":true,"err":false,"note":null,"value":-4.5e-3}]'],
        ['an empty array', '[]'],
        ['an empty array with blanks', ' [ \n ] '],
        ['names sanitized like statsd keys', JSON.stringify([{ name: 'a b/c!d  e', value: 1, type: 'c' }])],
        // Written as text: more digits than a double holds, exponents, the extremes.
        ['numbers in every JSON form', `[${['1', '-0', '0.5', '1e21', '1E+2', '2.5e-3', '123456789012345678', '9007199254740993', '0.1000000000000000055511151231257827',
          '2.2250738585072014e-308', '5e-324', '1.7976931348623157e308', '-123456789012345.5'].map((v, i) => `{"name":"n${i}","value":${v}}`).join(',')}]`],
      ];
      for (const [what, text] of taken) test(what, () => assert.equal(check(text), true, 'declined'));

      test('a rate whose inverse is not finite is declined, and the general path rejects it', () => {
        for (const rate of ['1e-320', '5e-324', '4e-309']) {
          const text = `[{"name":"a","value":1,"type":"c","rate":${rate}}]`;
          assert.equal(check(text), false, rate);
          assert.equal(general(text, OPTS, ''), null, rate);
        }
        assert.equal(check('[{"name":"a","value":1,"type":"c","rate":1e-300}]'), true);
      });

      test('with a prefix, without sanitizing', () => {
        assert.equal(check(JSON.stringify([{ name: 'api.rss', value: 5 }]), OPTS, 'servers.'), true);
        assert.equal(check(JSON.stringify([{ name: 'a/b.c', value: 5 }]), { ...OPTS, keyNameSanitize: false }), true);
      });

      test('a name seen again is the same string with the same key id', () => {
        const reader = newReader({ keyNameSanitize: true, maxNameLength: 1024, prefix: 'p.' });
        const text = Buffer.from(JSON.stringify([{ name: 'a', value: 1, type: 'c' }, { name: 'b', value: 1 }, { name: 'a', value: 2, type: 'c' }]));
        const sink = recorder();
        assert.equal(reader.read(text, 0, text.length), 3);
        reader.emit(sink);
        assert.equal(sink.calls[0]![1], 'p.a');
        assert.equal(sink.keys[0], sink.keys[2]);
        assert.notEqual(sink.keys[0], sink.keys[1]);
        assert.ok(sink.keys.every((k) => k >= 0));
      });
    });

    describe('declines what it cannot read exactly (the general path reads it)', () => {
      const declined: Array<[string, string]> = [
        ['an escape in a name', '[{"name":"a\\u0062","value":1}]'],
        ['a non-ASCII name', JSON.stringify([{ name: 'café', value: 1 }])],
        ['tags', JSON.stringify([{ name: 'a', value: 1, tags: { k: 'v' } }])],
        ['a set', JSON.stringify([{ name: 'a', value: 'u1', type: 's' }])],
        ['a set with a number', JSON.stringify([{ name: 'a', value: 1, type: 's' }])],
        ['a nested ignored member', JSON.stringify([{ name: 'a', value: 1, meta: { x: 1 } }])],
        ['a duplicated member', '[{"name":"a","value":1,"value":2}]'],
        ['no name', '[{"value":1}]'],
        ['no value', '[{"name":"a"}]'],
        ['an empty object', '[{}]'],
        ['an empty name', '[{"name":"","value":1}]'],
        ['a name that sanitizes to nothing', '[{"name":"!!!","value":1}]'],
        ['a name too long', JSON.stringify([{ name: 'a'.repeat(1025), value: 1 }])],
        ['a string value', '[{"name":"a","value":"1"}]'],
        ['a boolean value', '[{"name":"a","value":true}]'],
        ['an infinite value', '[{"name":"a","value":1e999}]'],
        ['a negative ms', '[{"name":"a","value":-1,"type":"ms"}]'],
        ['an unknown type', '[{"name":"a","value":1,"type":"x"}]'],
        ['a rate of 0', '[{"name":"a","value":1,"rate":0}]'],
        ['a rate above 1', '[{"name":"a","value":1,"rate":1.5}]'],
        ['milliseconds for time', '[{"name":"a","value":1,"time":1796000000000}]'],
        ['a time of 1e11', '[{"name":"a","value":1,"time":100000000000}]'],
        ['a time of 0', '[{"name":"a","value":1,"time":0}]'],
        ['a time with a leading zero', '[{"name":"a","value":1,"time":0123}]'],
        ['a negative time', '[{"name":"a","value":1,"time":-5}]'],
        ['a non-JSON number', '[{"name":"a","value":01}]'],
        ['a leading +', '[{"name":"a","value":+1}]'],
        ['a trailing comma', '[{"name":"a","value":1},]'],
        ['trailing garbage', '[{"name":"a","value":1}] x'],
        ['an unclosed array', '[{"name":"a","value":1}'],
        ['a number in the array', '[1]'],
        ['a bad item among good ones', '[{"name":"a","value":1},{"name":"b"}]'],
      ];
      for (const [what, text] of declined) {
        test(what, () => {
          const reader = newReader({ keyNameSanitize: true, maxNameLength: 1024, prefix: '' });
          assert.equal(fast(reader, text), null);
        });
      }

      test('unsanitized names with a space', () => {
        const reader = newReader({ keyNameSanitize: false, maxNameLength: 1024, prefix: '' });
        assert.equal(fast(reader, '[{"name":"a b","value":1}]'), null);
      });
    });

    describe('random messages: taken only when the general path agrees', () => {
      test('3,000 messages', () => {
        let seed = 0x2545f491;
        const rnd = (n: number) => {
          seed ^= seed << 13;
          seed ^= seed >>> 17;
          seed ^= seed << 5;
          return (seed >>> 0) % n;
        };
        const names = ['a', 'web1.cpu', 'x y', 'a/b', 'café', 'q"uote', 'b\\s', '', '!!', 'ok_name-1', 'tab\there'];
        const values: unknown[] = [0, 1, -1, 2.5, -0.001, 1e21, 'str', null, true, 1e-7, Number('123456789.123456789')];
        const types: unknown[] = [undefined, 'c', 'g', 'ms', 'h', 'd', 's', 'x', null];
        const rates: unknown[] = [undefined, 1, 0.5, 0, 2, null, '0.5'];
        const times: unknown[] = [undefined, 1796000000, 1796000000.5, 0, -1, 1e12, null, 'now'];
        let taken = 0;
        for (let m = 0; m < 3000; m++) {
          const items: unknown[] = [];
          for (let i = rnd(6); i > 0; i--) {
            const o: Record<string, unknown> = {};
            const order = ['name', 'value', 'type', 'rate', 'time', 'extra'].sort(() => rnd(3) - 1);
            for (const k of order) {
              const pick = rnd(10);
              if (k === 'name' && pick < 9) o.name = names[rnd(names.length)];
              if (k === 'value' && pick < 9) o.value = values[rnd(values.length)];
              if (k === 'type' && pick < 6) o.type = types[rnd(types.length)];
              if (k === 'rate' && pick < 3) o.rate = rates[rnd(rates.length)];
              if (k === 'time' && pick < 5) o.time = times[rnd(times.length)];
              if (k === 'extra' && pick < 2) o.host = pick === 0 ? 'h1' : { nested: 1 };
            }
            items.push(o);
          }
          const text = rnd(5) === 0 ? JSON.stringify(items, null, rnd(2) ? 2 : '\t') : JSON.stringify(rnd(8) === 0 ? (items[0] ?? {}) : items);
          if (check(text, OPTS, rnd(2) ? '' : 'p.')) taken++;
        }
        assert.ok(taken > 300, `the fast reader took only ${taken} of 3,000`);
      });
    });

    test('names found in the intern table and new ones, across generations the table clears and grows, name the right keys', () => {
      // A table of 8 entries that never grows: new names clear it mid-message again and again, after names
      // found earlier in the same message (whose entries the native lookup had already read). Then one that grows.
      for (const intern of [{ maxEntries: 8, maxEntriesCap: 8, restLookups: 0 }, { maxEntries: 8, restLookups: 0 }]) {
        const reader = newReader({ keyNameSanitize: true, maxNameLength: 1024, prefix: 'p.', intern });
        let seed = 7;
        const rand = (n: number): number => {
          seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
          return seed % n;
        };
        const byKey = new Map<number, string>(); // key ids are never reused, across generations too
        for (let m = 0; m < 400; m++) {
          const items = Array.from({ length: 1 + rand(30) }, () => ({ name: `n.${rand(m < 200 ? 12 : 40)}`, value: rand(100), type: 'c' }));
          const text = JSON.stringify(items);
          const want = items.map((i) => ['c', `p.${i.name}`, i.value, 1]);
          assert.deepEqual(fast(reader, text), want, text);
          // The keys are the table's: a key id always names the same name.
          const sink = recorder();
          assert.ok(reader.read(Buffer.from(text), 0, text.length) >= 0);
          reader.emit(sink);
          sink.calls.forEach((c, i) => {
            const key = sink.keys[i]!;
            if (key < 0) return;
            const seen = byKey.get(key);
            assert.ok(seen === undefined || seen === c[1], `key ${key} names both ${seen} and ${String(c[1])}`);
            byKey.set(key, c[1] as string);
          });
        }
      }
    });

    describe('through decodeFrame', () => {
      test('zlib messages: fastItems counts, items stay empty; declined ones decode as before', () => {
        const reader = newReader({ keyNameSanitize: true, maxNameLength: 1024, prefix: '' });
        const ok = Z.decodeFrame(deflateSync(JSON.stringify([{ name: 'a', value: 1, type: 'c' }, { name: 'b', value: 2 }])), OPTS, reader);
        assert.equal(ok.status, Z.FRAME_OK);
        assert.equal(ok.fastItems, 2);
        assert.equal(ok.items.length, 0);
        const sink = recorder();
        reader.emit(sink);
        assert.deepEqual(sink.calls, [['c', 'a', 1, 1], ['g', 'b', 2, false]]);
        const tagged = Z.decodeFrame(deflateSync(JSON.stringify([{ name: 'a', value: 1, tags: ['k:v'] }])), OPTS, reader);
        assert.equal(tagged.fastItems, 0);
        assert.deepEqual(tagged.items.map((i) => i.name), ['a;k=v']);
        const bad = Z.decodeFrame(Buffer.from('[{"name":"a","value":1}\u0001]'), OPTS, reader);
        assert.equal(bad.status, Z.FRAME_NOT_TEXT, 'a control character is still "not text"');
        assert.equal(Z.decodeFrame(Buffer.from('[{"name":"a","value":1}'), OPTS, reader).status, Z.FRAME_BAD_JSON);
      });

      test('passthrough never takes the fast path', () => {
        const reader = newReader({ keyNameSanitize: true, maxNameLength: 1024, prefix: '' });
        const d = Z.decodeFrame(Buffer.from(JSON.stringify([{ name: 'a', value: 1, time: 1796000000 }])), { ...OPTS, passthrough: true }, reader);
        assert.equal(d.fastItems, 0);
        assert.equal(d.items.length, 1);
      });
    });
  });
}
