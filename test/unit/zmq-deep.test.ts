/**
 * ZmqServer.onMessage against input built to get past a bound: more frames
 * than a message may have, items nested 100,000 deep (as a value, in tags,
 * as the whole message), JSON nested 1,000,000 deep. Each is a counted bad
 * message or bad item with a short log line; nothing throws, nothing
 * overflows the stack, the good items around them land.
 */
import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { describe, test } from 'node:test';
import { setImmediate as setImmediatePromise } from 'node:timers/promises';
import { deflateSync } from 'node:zlib';
import type { ZmqServerConfig } from '../../src/config/types.js';
import { MAX_FRAMES, ZmqServer, type ZmqSink } from '../../src/ingest/zmq.js';
import { createLogger } from '../../src/observability/logger.js';
import { SelfStats } from '../../src/observability/self-stats.js';
import { StatsdLineParser } from '../../src/parse/statsd-line.js';
import * as Z from '../../src/parse/zmq-message.js';

const AGG: Z.FrameOptions = { keyNameSanitize: true, maxNameLength: 1024, passthrough: false, maxMessageSize: 65536 };

function decode(frame: string, opts: Z.FrameOptions = AGG): Z.DecodedFrame {
  return Z.decodeFrame(Buffer.from(frame, 'utf8'), opts);
}

describe('ZmqServer.onMessage: frames and nesting no input can take past a bound', () => {
  /** 100,000 levels of `[...]` around 1, as text: JSON.parse takes it, JSON.stringify of the result would not. */
  const deep = (open: string, close: string, n = 100_000): string => `${open.repeat(n)}1${close.repeat(n)}`;

  function setup(logs: string[]) {
    const items: string[] = [];
    const sink: ZmqSink = {
      counter: (n) => void items.push(n), gauge: (n) => void items.push(n), timer: (n) => void items.push(n),
      set: (n) => void items.push(n), passthrough: (l) => void items.push(l),
    };
    const cfg: ZmqServerConfig = { server: 'zmq', bind: 'tcp://127.0.0.1:0', type: 'sub', mode: 'aggregate', prefix: '', maxMessageSize: 4 << 20, highWaterMark: 10 };
    const self = new SelfStats();
    const dest = new Writable({ write: (chunk: Buffer, _enc, done) => void (logs.push(chunk.toString()), done()) });
    // A RateLimitedLog per kind: one line each for the first bad frame and the first bad item.
    const server = new ZmqServer(cfg, true, new StatsdLineParser({ keyNameSanitize: true }), sink, self, createLogger('warn', dest));
    const send = (...frames: Array<string | Buffer>) => server.onMessage(frames.map((f) => (typeof f === 'string' ? Buffer.from(f) : f)));
    return { items, self, send };
  }

  test(`more than ${MAX_FRAMES} frames is a bad message, none of its frames read; a topic and a status frame is fine`, async () => {
    const logs: string[] = [];
    const { items, self, send } = setup(logs);
    send('topic', '{"name": "a", "value": 1}');
    send('t', 'u', '{"name": "b", "value": 1}');
    send(...Array.from({ length: 100 }, () => '{"name": "c", "value": 1}'));
    send('{"name": "d", "value": 1}');
    assert.deepEqual(items, ['a', 'd']);
    assert.deepEqual([self.zmqMessagesReceived, self.zmqBadFrames], [4, 2]);
    await setImmediatePromise();
    assert.equal(logs.length, 1);
    const line = JSON.parse(logs[0]!) as { msg: string; head: string };
    assert.equal(line.msg, `bad zeromq message: 3 frames (at most ${MAX_FRAMES}: a topic and the status)`);
    assert.equal(line.head, `hex:${Buffer.from('t').toString('hex')}`);
  });

  test('a value nested 100,000 deep, or deep tags, is a bad item logged in a short excerpt, never a stack overflow', async () => {
    const logs: string[] = [];
    const { items, self, send } = setup(logs);
    const msg = `[{"name": "ok1", "value": 1}, {"name": "a", "value": ${deep('[', ']')}}, {"name": "ok2", "value": 2}]`;
    send(msg);
    send(deflateSync(msg));
    send(`{"name": "t", "value": 1, "tags": ${deep('{"k":', '}')}}`);
    send(`[{"name": "t", "value": 1, "tags": [${deep('[', ']')}]}]`);
    send(deep('[', ']')); // an array of arrays: one bad item (not an object), so a bad frame too
    send(deep('{"a":', '}')); // one object without a name, nested
    assert.deepEqual(items, ['ok1', 'ok2', 'ok1', 'ok2']);
    assert.deepEqual([self.zmqMessagesReceived, self.zmqBadItems, self.zmqBadFrames], [6, 6, 4]);
    await setImmediatePromise();
    assert.ok(!logs.some((l) => l.includes('Maximum call stack')), logs.join('\n'));
    for (const l of logs) assert.ok(l.length < 1000, `a log line of ${l.length} chars`);
    const first = JSON.parse(logs.find((l) => l.includes('bad item'))!) as { msg: string; item: string; index: number };
    assert.deepEqual(first, { ...first, msg: 'bad item in a zeromq message: value is not a finite number', item: '{"name":"a","value":[[[[…]]]]}', index: 1 });
  });

  test('JSON.parse on 1,000,000 levels: read (it does not recurse on this Node), or a bad message if it throws, never an exception', () => {
    const d = decode(deep('[', ']', 1_000_000), { ...AGG, maxMessageSize: 4 << 20 });
    assert.ok(d.status === Z.FRAME_OK || d.status === Z.FRAME_BAD_JSON, Z.frameStatusText(d.status));
    assert.equal(decode(`${'['.repeat(1000)}1`).status, Z.FRAME_BAD_JSON);
  });
});
