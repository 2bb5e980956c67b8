/**
 * ZeroMQ status frames, no sockets: format detection (zlib or plain; JSON
 * array, one object or statsd lines), item validation and naming, the size
 * bound (as received and once inflated), a table of bad frames and bad
 * items, and how ZmqServer counts and routes one message.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { describe, test } from 'node:test';
import { deflateRawSync, deflateSync, gzipSync, inflateSync } from 'node:zlib';
import type { ZmqServerConfig } from '../../src/config/types.js';
import { ZmqServer, type ZmqSink } from '../../src/ingest/zmq.js';
import { nativeAddon, type TallydAddon } from '../../src/native/addon.js';
import { createLogger } from '../../src/observability/logger.js';
import { SelfStats } from '../../src/observability/self-stats.js';
import { StatsdLineParser } from '../../src/parse/statsd-line.js';
import { sanitizeKey } from '../../src/parse/sanitize.js';
import { type ItemOptions, passthroughLine, readItem, type StatusItem } from '../../src/parse/zmq-item.js';
import * as Z from '../../src/parse/zmq-message.js';
import { encodeStatus } from '../../src/publisher/status-publisher.js';

const AGG: Z.FrameOptions = { keyNameSanitize: true, maxNameLength: 1024, passthrough: false, maxMessageSize: 65536 };
const PASS: Z.FrameOptions = { ...AGG, passthrough: true };

const ITEMS = [
  { name: 'web1.load', value: 0.75, time: 1700000000.5 },
  { name: 'web1.requests', value: 12, time: 1700000000, type: 'c', rate: 0.5 },
];

function decode(frame: Buffer | string, opts: Z.FrameOptions = AGG): Z.DecodedFrame {
  return Z.decodeFrame(typeof frame === 'string' ? Buffer.from(frame, 'utf8') : frame, opts);
}

function item(raw: unknown, opts: ItemOptions = AGG): StatusItem | string {
  return readItem(raw, opts);
}

describe('format detection', () => {
  test('a zlib header is recognised at every compression level; text is not mistaken for one', () => {
    const json = Buffer.from(JSON.stringify(ITEMS));
    for (let level = 0; level <= 9; level++) assert.ok(Z.looksLikeZlib(deflateSync(json, { level })), `level ${level}`);
    for (const text of ['[', '{"name":"a"}', 'a:1|c', 'x', 'xx', 'x ', '(a)', 'h:1|c']) {
      assert.equal(Z.looksLikeZlib(Buffer.from(text)), false, text);
    }
    assert.equal(Z.looksLikeZlib(gzipSync(json)), false);
    assert.equal(Z.looksLikeZlib(deflateRawSync(json)), false);
  });

  const cases: Array<[string, Buffer, boolean, 'json' | 'statsd', number]> = [
    ['zlib JSON array', deflateSync(JSON.stringify(ITEMS)), true, 'json', 2],
    ['plain JSON array', Buffer.from(JSON.stringify(ITEMS)), false, 'json', 2],
    ['zlib single object', deflateSync(JSON.stringify(ITEMS[0])), true, 'json', 1],
    ['plain single object', Buffer.from(JSON.stringify(ITEMS[0])), false, 'json', 1],
    ['pretty JSON after a BOM and blank lines', Buffer.from(`\ufeff\n  \r\n${JSON.stringify(ITEMS, null, 2)}\n`), false, 'json', 2],
    ['an empty array (a heartbeat)', Buffer.from('[]'), false, 'json', 0],
    ['plain statsd lines', Buffer.from('a:1|c\nb:2|ms\n'), false, 'statsd', 0],
    ['zlib statsd lines', deflateSync('a:1|c\nb:2|ms'), true, 'statsd', 0],
    ['text that opens like a zlib header', Buffer.from('x^y:1|c'), false, 'statsd', 0],
  ];
  for (const [what, frame, compressed, format, items] of cases) {
    test(`detects ${what}`, () => {
      const d = decode(frame);
      assert.equal(d.status, Z.FRAME_OK, Z.frameStatusText(d.status));
      assert.deepEqual([d.compressed, d.format, d.items.length, d.badItems.length], [compressed, format, items, 0]);
    });
  }

  test('hands statsd lines on as the inflated bytes', () => {
    assert.equal(decode(deflateSync('a:1|c\nb:2|ms')).text.toString(), 'a:1|c\nb:2|ms');
  });

  test("reads the StatusPublisher's encoding, zlib or not, and fills in time", async () => {
    for (const zlib of [true, false]) {
      const d = decode(await encodeStatus([{ name: 'n', value: 1 }, { name: 'm', value: 2, time: 5 }], zlib, 1700000000.25), PASS);
      assert.deepEqual(d.items.map((i) => [i.name, i.time, d.compressed]), [['n', 1700000000.25, zlib], ['m', 5, zlib]]);
    }
  });
});

describe('items', () => {
  const ok = (raw: unknown, opts?: ItemOptions): StatusItem => {
    const r = item(raw, opts);
    assert.ok(typeof r !== 'string', `rejected: ${String(r)}`);
    return r;
  };

  test('default to gauges, take every statsd type, rate and time', () => {
    assert.deepEqual(ok({ name: 'a', value: -3.5 }), { name: 'a', type: 'g', value: -3.5, member: '', rate: 1, time: null });
    assert.deepEqual(ok({ name: 'a', value: 2, type: 'c', rate: 0.25, time: 1700000000.9 }),
      { name: 'a', type: 'c', value: 2, member: '', rate: 0.25, time: 1700000000.9 });
    for (const type of ['ms', 'h', 'd'] as const) assert.equal(ok({ name: 't', value: 5, type }).type, type);
    assert.equal(ok({ name: 'h', value: -5, type: 'h' }).value, -5);
    assert.deepEqual([ok({ name: 's', value: 'user1', type: 's' }).member, ok({ name: 's', value: 42, type: 's' }).member,
      ok({ name: 's', value: '', type: 's' }).member], ['user1', '42', '0']);
    assert.equal(ok({ name: 'a', value: 1, extra: 'ignored', host: 'web1' }).name, 'a');
  });

  test("build names with statsd's tag and sanitizing rules", () => {
    const cases: Array<[unknown, string]> = [
      [{ name: 'app.req', tags: { region: 'eu', code: 200 } }, 'app.req;region=eu;code=200'],
      [{ name: 'app.req', tags: ['region:eu', 'canary'] }, 'app.req;region=eu;canary'],
      [{ name: 'app.req', tags: ['a;b:c:d'] }, 'app.req;a_b=cd'],
      [{ name: 'my app/req  time!', tags: [] }, 'my_app-req_time'],
      [{ name: 'app', tags: {} }, 'app'],
    ];
    for (const [raw, name] of cases) assert.equal(ok({ value: 1, ...(raw as object) }).name, name, JSON.stringify(raw));
    // The same as a statsd line with those tags would give.
    assert.equal(ok({ name: 'a b', value: 1, tags: ['x y:1'] }).name, sanitizeKey('a b;x y=1'));
    const raw = { ...AGG, keyNameSanitize: false };
    assert.equal(ok({ name: 'Ünï.côdé', value: 1, tags: { k: 'v' } }, raw).name, 'Ünï.côdé;k=v');
  });

  test('in passthrough mode need a time and a numeric value', () => {
    assert.deepEqual(ok({ name: 's', value: 3, type: 's', time: 1700000000 }, PASS).value, 3);
    assert.equal(item({ name: 'a', value: 1 }, PASS), "missing time (passthrough needs each item's own timestamp)");
    assert.equal(item({ name: 's', value: 'x', type: 's', time: 1 }, PASS), 'value is not a finite number');
    assert.equal(passthroughLine(ok({ name: 'a', value: 0.5, time: 1700000000.99, tags: ['k:v'] }, PASS), 'pre.'), 'pre.a;k=v 0.5 1700000000');
  });

  const bad: Array<[unknown, string, ItemOptions?]> = [
    [42, 'not an object'],
    [[{ name: 'a', value: 1 }], 'not an object'],
    [null, 'not an object'],
    [{ value: 1 }, 'missing name'],
    [{ name: 7, value: 1 }, 'name is not a string'],
    [{ name: '', value: 1 }, 'empty name'],
    [{ name: '!!!', value: 1 }, 'empty name'],
    [{ name: 'a'.repeat(1025), value: 1 }, 'name longer than 1024 bytes'],
    [{ name: 'a b', value: 1 }, 'name contains whitespace or control characters', { ...AGG, keyNameSanitize: false }],
    [{ name: 'a\nb 1 2\nc', value: 1, time: 1 }, 'name contains whitespace or control characters', { ...PASS, keyNameSanitize: false }],
    [{ name: 'a' }, 'missing value'],
    [{ name: 'a', value: '12' }, 'value is not a finite number'],
    [{ name: 'a', value: true }, 'value is not a finite number'],
    [{ name: 'a', value: JSON.parse('1e999') }, 'value is not a finite number'],
    [{ name: 'a', value: {} , type: 's' }, 'set member is not a string or a finite number'],
    [{ name: 'a', value: -1, type: 'ms' }, 'negative timer value'],
    [{ name: 'a', value: 1, type: 'x' }, 'unknown type (expected one of c, g, ms, h, d, s)'],
    [{ name: 'a', value: 1, type: 'C' }, 'unknown type (expected one of c, g, ms, h, d, s)'],
    [{ name: 'a', value: 1, rate: 0 }, 'rate is not a number in (0, 1]'],
    [{ name: 'a', value: 1, rate: 2 }, 'rate is not a number in (0, 1]'],
    [{ name: 'a', value: 1, rate: '0.5' }, 'rate is not a number in (0, 1]'],
    [{ name: 'a', value: 1, rate: 1e-320 }, 'rate has no finite inverse'],
    [{ name: 'a', value: 1, time: '1700000000' }, 'time is not unix seconds'],
    [{ name: 'a', value: 1, time: 1700000000000 }, 'time is not unix seconds'],
    [{ name: 'a', value: 1, time: -5 }, 'time is not unix seconds'],
    [{ name: 'a', value: 1, tags: 'k:v' }, 'tags are not an object of strings and numbers or an array of non-empty strings'],
    [{ name: 'a', value: 1, tags: [''] }, 'tags are not an object of strings and numbers or an array of non-empty strings'],
    [{ name: 'a', value: 1, tags: [1] }, 'tags are not an object of strings and numbers or an array of non-empty strings'],
    [{ name: 'a', value: 1, tags: { k: null } }, 'tags are not an object of strings and numbers or an array of non-empty strings'],
  ];
  for (const [raw, reason, opts] of bad) {
    test(`rejects ${JSON.stringify(raw)?.slice(0, 60)}: ${reason}`, () => assert.equal(item(raw, opts), reason));
  }

  test('a bad item in an array is skipped; the rest of the array stays', () => {
    const d = decode(JSON.stringify([{ name: 'a', value: 1 }, { name: 'b', value: 'x' }, { value: 2 }, { name: 'c', value: 3 }]));
    assert.equal(d.status, Z.FRAME_OK);
    assert.deepEqual(d.items.map((i) => i.name), ['a', 'c']);
    assert.deepEqual(d.badItems.map((b) => b.reason), ['value is not a finite number', 'missing name']);
  });
});

describe('bounds', () => {
  const opts = { ...AGG, maxMessageSize: 1000 };

  test('a frame longer than maxMessageSize is oversized, before any parsing', () => {
    assert.equal(decode(`[${' '.repeat(999)}]`, opts).status, Z.FRAME_OVERSIZED);
    assert.equal(decode(`[${' '.repeat(998)}]`, opts).status, Z.FRAME_OK);
  });

  test('a zlib frame inflating past maxMessageSize is oversized; inflating stops at the bound', () => {
    const bomb = deflateSync(Buffer.alloc(64 * 1024 * 1024, 0x20), { level: 9 }); // ~64 KiB that inflate to 64 MiB
    const d = decode(bomb, { ...AGG, maxMessageSize: 100_000 });
    assert.equal(d.status, Z.FRAME_OVERSIZED);
    assert.match(d.detail, /more than 100000 bytes/);
    assert.equal(decode(deflateSync(`[${' '.repeat(998)}]`), opts).status, Z.FRAME_OK);
    assert.equal(decode(deflateSync(`[${' '.repeat(999)}]`), opts).status, Z.FRAME_OVERSIZED);
  });
});

describe('bad frames', () => {
  const zlibGarbage = Buffer.concat([Buffer.from([0x78, 0x9c]), Buffer.from([0xff, 0x00, 0x13, 0x37, 0x80, 0x81])]);
  const truncated = deflateSync(JSON.stringify(ITEMS)).subarray(0, 12);
  const table: Array<[string, Buffer, number]> = [
    ['zero bytes', Buffer.alloc(0), Z.FRAME_EMPTY],
    ['only whitespace', Buffer.from(' \r\n\t'), Z.FRAME_EMPTY],
    ['random binary', Buffer.from('8f00d3a1b2c3ff0102fe', 'hex'), Z.FRAME_NOT_TEXT],
    ['invalid UTF-8', Buffer.from([0x61, 0x3a, 0x31, 0x7c, 0x63, 0xc3, 0x28]), Z.FRAME_NOT_TEXT],
    ['text with a NUL', Buffer.from('a:1|c\0'), Z.FRAME_NOT_TEXT],
    ['gzip instead of zlib', gzipSync('[]'), Z.FRAME_NOT_TEXT],
    ['a zlib header over garbage', zlibGarbage, Z.FRAME_BAD_ZLIB],
    ['a truncated zlib stream', truncated, Z.FRAME_BAD_ZLIB],
    ['unterminated JSON', Buffer.from('[{"name": "a", "value": 1}'), Z.FRAME_BAD_JSON],
    ['a JSON object cut short', deflateSync('{"name":'), Z.FRAME_BAD_JSON],
    ['JSON with a trailing comma', Buffer.from('[1,]'), Z.FRAME_BAD_JSON],
  ];
  for (const [what, frame, status] of table) {
    test(`${what}: ${Z.frameStatusText(status)}`, () => assert.equal(decode(frame).status, status));
  }

  test('never throws on random bytes, raw or behind a valid zlib header', () => {
    for (let i = 0; i < 2000; i++) {
      const junk = randomBytes(2 + (i % 64));
      if (i % 2 === 0) junk.set([0x78, 0x9c]);
      const d = decode(junk);
      assert.ok(d.status >= Z.FRAME_OK && d.status <= Z.FRAME_BAD_JSON);
    }
  });
});

describe('ZmqServer.onMessage', () => {
  type Call = [string, string, number | string, (number | boolean)?];
  function setup(mode: 'aggregate' | 'passthrough', prefix = '') {
    const calls: Call[] = [];
    const sink: ZmqSink = {
      counter: (n, v, r) => void calls.push(['c', n, v, r]),
      gauge: (n, v, d) => void calls.push(['g', n, v, d]),
      timer: (n, v, r) => void calls.push(['t', n, v, r]),
      set: (n, m) => void calls.push(['s', n, m]),
      passthrough: (line) => void calls.push(['p', line, 0]),
    };
    const cfg: ZmqServerConfig = { server: 'zmq', bind: 'tcp://127.0.0.1:0', type: 'sub', mode, prefix, maxMessageSize: 4096, highWaterMark: 10 };
    const self = new SelfStats();
    const parser = new StatsdLineParser({ keyNameSanitize: true });
    const server = new ZmqServer(cfg, true, parser, sink, self, createLogger('silent'));
    const send = (...frames: Array<string | Buffer>) => server.onMessage(frames.map((f) => (typeof f === 'string' ? Buffer.from(f) : f)));
    return { calls, self, parser, send };
  }

  test('aggregate: items and statsd lines reach the sink under the prefix; a topic frame is ignored', () => {
    const { calls, self, parser, send } = setup('aggregate', 'pre.');
    send('topic', deflateSync(JSON.stringify([{ name: 'g', value: 1.5 }, { name: 'c', value: 2, type: 'c', rate: 0.5 },
      { name: 't', value: 3, type: 'ms' }, { name: 's', value: 'u', type: 's' }])));
    send('x:1|c|#k:v\nbad line');
    assert.deepEqual(calls, [['g', 'pre.g', 1.5, false], ['c', 'pre.c', 2, 0.5], ['t', 'pre.t', 3, 1], ['s', 'pre.s', 'u'],
      ['c', 'pre.x;k=v', 1, 1]]);
    assert.deepEqual([self.zmqMessagesReceived, self.zmqBadFrames, self.zmqBadItems, parser.metricsReceived, parser.badLines], [2, 0, 0, 2, 1]);
  });

  test('passthrough: one Graphite line per item with its own whole-second timestamp', () => {
    const { calls, send } = setup('passthrough', 'servers.');
    send(JSON.stringify([{ name: 'web1.load', value: 0.5, time: 1700000000.7 }, { name: 'web1.up', value: 1, time: 1699996400 }]));
    assert.deepEqual(calls, [['p', 'servers.web1.load 0.5 1700000000', 0], ['p', 'servers.web1.up 1 1699996400', 0]]);
  });

  test('counts bad frames, bad items and oversized messages, and goes on', () => {
    const { calls, self, send } = setup('aggregate');
    send('[{"name": "ok1", "value": 1}]');
    send(Buffer.from('deadbeef00ff', 'hex')); // not text: bad frame
    send('[{"name": "ok2", "value": 1}, {"name": "bad", "value": "x"}]'); // one bad item, frame fine
    send('{"value": 1}'); // the only item is bad: a bad item and a bad frame
    send('nothing statsd here'); // statsd text without one good line: a bad frame
    send(deflateSync(Buffer.alloc(100_000, 0x20))); // inflates past 4096
    send(''); // empty
    send('{"name": "ok3", "value": 1}');
    assert.deepEqual(calls.map((c) => c[1]), ['ok1', 'ok2', 'ok3']);
    assert.deepEqual([self.zmqMessagesReceived, self.zmqBadFrames, self.zmqBadItems, self.zmqOversized], [8, 4, 2, 1]);
  });
});

describe('the native inflater (zmq_inflate.c): the same text and verdicts as node:zlib', () => {
  const addon = nativeAddon();
  const skip = typeof addon === 'string' && !process.env.CI ? `native addon not available: ${addon}` : false;

  test('zmqInflate answers a clean stream only: n, -1 for a short buffer, -2 for node:zlib to decide', { skip }, () => {
    const lib = addon as TallydAddon;
    const json = Buffer.from(JSON.stringify(Array.from({ length: 100 }, (_, i) => ({ name: `n.${i}`, value: i, type: 'c' }))));
    const frame = deflateSync(json);
    const out = Buffer.alloc(json.length + 10);
    assert.equal(lib.zmqInflate(frame, out), json.length);
    assert.ok(out.subarray(0, json.length).equals(json));
    assert.equal(lib.zmqInflate(frame, out.subarray(0, json.length)), json.length, 'exactly the room it needs');
    assert.equal(lib.zmqInflate(frame, out.subarray(0, json.length - 1)), -1);
    assert.equal(lib.zmqInflate(frame.subarray(0, frame.length - 4), out), -2, 'truncated');
    assert.equal(lib.zmqInflate(Buffer.concat([frame, Buffer.from('xy')]), out), -2, 'bytes after the stream');
    assert.equal(lib.zmqInflate(Buffer.from([0x78, 0x9c, 0xff, 0x00, 0x13]), out), -2, 'garbage');
    assert.equal(lib.zmqInflate(frame, out), json.length, 'a failed stream leaves the next one unharmed');
  });

  test('decodeFrame: large, exactly-at-the-bound, over-the-bound, odd and random frames decode as node:zlib has them', { skip }, () => {
    const big = Buffer.from(JSON.stringify(Array.from({ length: 5000 }, (_, i) => ({ name: `big.${i}`, value: i }))));
    assert.ok(big.length > 2 * 65536, 'more than the 64 KiB scratch buffer starts with');
    const d = decode(deflateSync(big), { ...AGG, maxMessageSize: 1 << 20 });
    assert.equal(d.status, Z.FRAME_OK);
    assert.equal(d.items.length, 5000);
    assert.ok(d.text.equals(big));
    const exact = `[${' '.repeat(998)}]`;
    assert.equal(decode(deflateSync(exact), { ...AGG, maxMessageSize: 1000 }).status, Z.FRAME_OK);
    assert.equal(decode(deflateSync(exact), { ...AGG, maxMessageSize: 999 }).status, Z.FRAME_OVERSIZED);
    const trailing = decode(Buffer.concat([deflateSync(JSON.stringify(ITEMS)), Buffer.from('xx')]));
    assert.deepEqual(trailing.items.map((i) => i.name), ITEMS.map((i) => i.name), 'node:zlib ignores bytes after the stream; so do we');
    // Whole streams, whole streams with bytes after them, and cut ones, of text and of binary.
    let inflatedOk = 0;
    for (let i = 0; i < 600; i++) {
      const body = i % 2 ? randomBytes(1 + (i % 300)) : Buffer.from(JSON.stringify(ITEMS.slice(0, 1 + (i % 2))).repeat(1 + (i % 5)));
      const whole = deflateSync(body);
      const kind = i % 3;
      const frame = kind === 0 ? whole : kind === 1 ? Buffer.concat([whole, randomBytes(1 + (i % 7))]) : whole.subarray(0, 2 + (i % (whole.length - 2)));
      let inflated: Buffer | null;
      try {
        inflated = inflateSync(frame, { maxOutputLength: AGG.maxMessageSize });
      } catch {
        inflated = null;
      }
      const d = decode(frame);
      const what = `frame ${frame.toString('hex')}`;
      if (inflated !== null) {
        inflatedOk++;
        assert.equal(d.compressed, true, what);
        assert.notEqual(d.status, Z.FRAME_BAD_ZLIB, what);
        if (d.status === Z.FRAME_OK) assert.ok(d.text.equals(inflated), what);
      } else {
        assert.ok(d.status === Z.FRAME_BAD_ZLIB || !d.compressed, what);
      }
    }
    assert.ok(inflatedOk >= 300, `only ${inflatedOk} of the frames inflated`);
  });
});
