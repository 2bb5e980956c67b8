import { test } from 'node:test';
import assert from 'node:assert/strict';
import { LineFramer } from '../../src/ingest/line-framer.js';

type Event = string | { overlong: number };

/** Feed chunks through a framer; collect every line (empty ones too) and overlong drops, in order. */
function frame(chunks: Buffer[], max: number, end = true): Event[] {
  const events: Event[] = [];
  const framer = new LineFramer(
    max,
    (buf, start, stop) => {
      assert.ok(start < stop && stop <= buf.length);
      const text = buf.toString('latin1', start, stop);
      const lines = text.split('\n');
      if (text.endsWith('\n')) lines.pop();
      events.push(...lines);
    },
    (bytes) => void events.push({ overlong: bytes }),
  );
  for (const c of chunks) framer.push(c);
  if (end) framer.end();
  return events;
}

const payload = Buffer.from('a:1|c\nbb:2|g\r\n\nccc:3|ms|@0.5\nd:x|s\ne:5|c\n', 'latin1');

test('unsplit payload gives its lines', () => {
  assert.deepEqual(frame([payload], 64), ['a:1|c', 'bb:2|g\r', '', 'ccc:3|ms|@0.5', 'd:x|s', 'e:5|c']);
});

test('split at every byte boundary, and into 3 pieces at every boundary pair', () => {
  for (const max of [64, 20, 13]) {
    const want = frame([payload], max);
    for (let i = 0; i <= payload.length; i++) {
      assert.deepEqual(frame([payload.subarray(0, i), payload.subarray(i)], max), want, `max ${max} split ${i}`);
      for (let j = i; j <= payload.length; j++) {
        const pieces = [payload.subarray(0, i), payload.subarray(i, j), payload.subarray(j)];
        assert.deepEqual(frame(pieces, max), want, `max ${max} split ${i},${j}`);
      }
    }
    const bytes = Array.from(payload, (_, k) => payload.subarray(k, k + 1));
    assert.deepEqual(frame(bytes, max), want, `max ${max} byte by byte`);
  }
});

test('overlong lines are dropped and counted, neighbours survive, at any split', () => {
  const long = 'x'.repeat(40);
  const data = Buffer.from(`ok1\n${long}\nok2\n${'y'.repeat(21)}\n${'z'.repeat(20)}\nok3\n`, 'latin1');
  const want: Event[] = ['ok1', { overlong: 40 }, 'ok2', { overlong: 21 }, 'z'.repeat(20), 'ok3'];
  assert.deepEqual(frame([data], 20), want);
  for (let i = 0; i <= data.length; i++) {
    assert.deepEqual(frame([data.subarray(0, i), data.subarray(i)], 20), want, `split ${i}`);
    for (let j = i; j <= data.length; j += 3) {
      const pieces = [data.subarray(0, i), data.subarray(i, j), data.subarray(j)];
      assert.deepEqual(frame(pieces, 20), want, `split ${i},${j}`);
    }
  }
});

test('end() flushes an unterminated last line, or reports it overlong', () => {
  assert.deepEqual(frame([Buffer.from('a:1|c\nb:2|c')], 64), ['a:1|c', 'b:2|c']);
  assert.deepEqual(frame([Buffer.from('a:1|c\nb:2'), Buffer.from('|c')], 64), ['a:1|c', 'b:2|c']);
  assert.deepEqual(frame([Buffer.from('a:1|c\nb:2|c')], 64, false), ['a:1|c']);
  assert.deepEqual(frame([Buffer.from('a:1|c\n'), Buffer.from('q'.repeat(30))], 10), ['a:1|c', { overlong: 30 }]);
  assert.deepEqual(frame([Buffer.from('a:1|c\n')], 64), ['a:1|c']);
  assert.deepEqual(frame([], 64), []);
});

test('fast path hands the chunk itself up to its last newline', () => {
  const regions: [Buffer, number, number][] = [];
  const framer = new LineFramer(1024, (b, s, e) => void regions.push([b, s, e]), () => assert.fail('overlong'));
  const chunk = Buffer.from('a:1|c\nb:2|c\ntail');
  framer.push(chunk);
  assert.equal(regions.length, 1);
  assert.equal(regions[0]![0], chunk);
  assert.deepEqual(regions[0]!.slice(1), [0, 12]);
});

test('an overlong line is reported with its first 200 bytes, wherever the chunks split it (the log quotes them)', () => {
  const line = Buffer.from(Array.from({ length: 300 }, (_, i) => 0x61 + (i % 26)));
  const data = Buffer.concat([Buffer.from('ok\n'), line, Buffer.from('\nok2\n'), line]);
  const want = line.toString('latin1', 0, 200);
  for (let i = 0; i <= data.length; i += 7) {
    for (const max of [1, 150, 250]) {
      const heads: [number, string][] = [];
      const framer = new LineFramer(max, () => undefined, (bytes, head, s, e) => void heads.push([bytes, head.toString('latin1', s, e)]));
      framer.push(data.subarray(0, i));
      framer.push(data.subarray(i));
      framer.end();
      const long = heads.filter(([bytes]) => bytes === 300);
      assert.deepEqual(long, [[300, want], [300, want]], `split ${i}, max ${max}`);
    }
  }
});
