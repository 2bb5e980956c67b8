/**
 * Minimal inputs for what fuzzing the statsd parser found (fuzz-statsd.test.ts),
 * one test each.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { SampleSink } from '../../src/parse/sample-sink.js';
import * as L from '../../src/parse/statsd-line.js';

function names(): SampleSink & { names: string[] } {
  const names: string[] = [];
  const push = (name: string): void => void names.push(name);
  return { names, counter: push, gauge: push, timer: push, set: push };
}

test('keyNameSanitize off: maxNameLength bounds the key in UTF-8 bytes, not raw bytes (invalid UTF-8 decodes to 3-byte U+FFFD)', () => {
  const p = new L.StatsdLineParser({ keyNameSanitize: false, maxNameLength: 4 });
  const sink = names();
  // 2 raw bytes, 6 bytes of UTF-8 once decoded: too long (it used to be accepted as a 6-byte key).
  assert.equal(p.parseLine(Buffer.from([0xff, 0xff, 0x3a, 0x31, 0x7c, 0x63]), 0, 6, sink), L.LINE_NAME_TOO_LONG);
  // Once more, now that the intern table has seen other keys: still refused.
  assert.equal(p.parseLine(Buffer.from('ab:1|c'), 0, 6, sink), L.LINE_OK);
  assert.equal(p.parseLine(Buffer.from([0xff, 0xff, 0x3a, 0x31, 0x7c, 0x63]), 0, 6, sink), L.LINE_NAME_TOO_LONG);
  // 1 raw byte, 3 bytes of UTF-8: fits; valid multi-byte UTF-8 counts its own bytes.
  assert.equal(p.parseLine(Buffer.from([0xff, 0x3a, 0x31, 0x7c, 0x63]), 0, 5, sink), L.LINE_OK);
  assert.equal(p.parseLine(Buffer.from('éé:1|c'), 0, Buffer.byteLength('éé:1|c'), sink), L.LINE_OK);
  assert.equal(p.parseLine(Buffer.from('ééa:1|c'), 0, Buffer.byteLength('ééa:1|c'), sink), L.LINE_NAME_TOO_LONG);
  assert.deepEqual(sink.names, ['ab', '\ufffd', 'éé']);
  for (const n of sink.names) assert.ok(Buffer.byteLength(n) <= 4, n);
});
