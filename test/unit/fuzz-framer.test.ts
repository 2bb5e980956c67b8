/**
 * Fuzzing the TCP line framer: random streams (fuzzed statsd lines, CRLF,
 * NUL bytes, empty lines, lines just under, at and over the cap, lines many
 * times the cap, megabytes of input) cut into chunks at every byte boundary
 * (small inputs) or at random sizes (many inputs). The framer never throws,
 * hands up exactly the lines a reference split of the whole stream gives,
 * reports each line over the cap once with its length and first bytes
 * instead of handing it up, and keeps its remainder bounded. FUZZ_SEED=<n> replays a run.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { LineFramer, OVERLONG_HEAD_BYTES } from '../../src/ingest/line-framer.js';
import { fuzzSeed, garbageLine, Rand } from '../helpers/fuzz.js';

const SEED = fuzzSeed();
const NL = 0x0a;

type Event = string | { overlong: number; head: string };

/** The reference: split the whole stream on '\n'; a line over max is an overlong event; an unterminated tail counts at the end. */
function reference(stream: Buffer, max: number): Event[] {
  const out: Event[] = [];
  let s = 0;
  while (s < stream.length) {
    let e = stream.indexOf(NL, s);
    if (e < 0) e = stream.length;
    const len = e - s;
    if (len > max) out.push({ overlong: len, head: stream.toString('latin1', s, s + Math.min(len, OVERLONG_HEAD_BYTES)) });
    else if (len > 0 || e < stream.length) out.push(stream.toString('latin1', s, e));
    s = e + 1;
  }
  return out;
}

/** Feed chunks through a framer; the lines of every region (each must end in '\n' but the one end() gives) and overlong events. */
function frame(chunks: readonly Buffer[], max: number): { events: Event[]; maxCapacity: number } {
  const events: Event[] = [];
  let ended = false;
  const framer = new LineFramer(
    max,
    (buf, start, end) => {
      assert.ok(start >= 0 && start < end && end <= buf.length, `region ${start}..${end} of ${buf.length}`);
      const terminated = buf[end - 1] === NL;
      assert.ok(terminated || ended, 'only the region end() hands up may lack its final newline');
      const lines = buf.toString('latin1', start, terminated ? end - 1 : end).split('\n');
      for (const l of lines) {
        assert.ok(l.length <= max, `a line of ${l.length} bytes was handed up (cap ${max})`);
        events.push(l);
      }
    },
    (bytes, head, hs, he) => void events.push({ overlong: bytes, head: head.toString('latin1', hs, he) }),
  );
  let maxCapacity = 0;
  for (const c of chunks) {
    framer.push(c);
    maxCapacity = Math.max(maxCapacity, framer.remainderCapacity);
  }
  ended = true;
  framer.end();
  return { events, maxCapacity };
}

/** A random stream of lines around the cap. */
function randomStream(r: Rand, max: number, lines: number): Buffer {
  const parts: Buffer[] = [];
  for (let i = 0; i < lines; i++) {
    const k = r.int(10);
    let line: Buffer;
    if (k < 4) line = garbageLine(r);
    else if (k === 4) line = Buffer.alloc(0);
    else if (k === 5) line = Buffer.alloc(Math.max(0, max - 1 + r.int(3)), 0x61); // just under, at, just over the cap
    else if (k === 6) line = Buffer.alloc(max * (2 + r.int(4)) + r.int(7), 0x62);
    else if (k === 7) line = Buffer.from(`crlf.${i}:1|c\r`);
    else if (k === 8) line = Buffer.from([0x61, 0x00, 0x3a, 0x00, 0x7c, 0x63, 0x00]);
    else line = Buffer.from(`plain.${i}:${r.int(100)}|ms`);
    parts.push(line);
    if (i < lines - 1 || r.chance(0.7)) parts.push(Buffer.from([NL]));
  }
  return Buffer.concat(parts);
}

function randomChunks(r: Rand, stream: Buffer, max: number): Buffer[] {
  const chunks: Buffer[] = [];
  const style = r.int(3);
  let p = 0;
  while (p < stream.length) {
    const n = style === 0 ? 1 + r.int(8) : style === 1 ? 1 + r.int(max * 3) : 1 + r.int(stream.length);
    chunks.push(stream.subarray(p, p + n));
    if (r.chance(0.05)) chunks.push(Buffer.alloc(0));
    p += n;
  }
  return chunks;
}

function capacityBound(max: number): number {
  return Math.max(max + 1, 256);
}

test(`line framer: small fuzzed streams split at every byte boundary, pairs of boundaries and byte by byte, seed ${SEED}`, (t) => {
  t.diagnostic(`FUZZ_SEED=${SEED}`);
  const r = new Rand(SEED);
  for (const max of [1, 5, 16, 40]) {
    for (let n = 0; n < 3; n++) {
      const stream = randomStream(r, max, 6 + r.int(6)).subarray(0, 160);
      const want = reference(stream, max);
      const tell = `seed ${SEED}, max ${max}, stream ${JSON.stringify(stream.toString('latin1'))}`;
      assert.deepEqual(frame([stream], max).events, want, tell);
      assert.deepEqual(frame(Array.from(stream, (_, k) => stream.subarray(k, k + 1)), max).events, want, `${tell}, byte by byte`);
      for (let i = 0; i <= stream.length; i++) {
        assert.deepEqual(frame([stream.subarray(0, i), stream.subarray(i)], max).events, want, `${tell}, split at ${i}`);
        for (let j = i; j <= stream.length; j += 7) {
          const res = frame([stream.subarray(0, i), stream.subarray(i, j), stream.subarray(j)], max);
          assert.deepEqual(res.events, want, `${tell}, split at ${i}, ${j}`);
          assert.ok(res.maxCapacity <= capacityBound(max), `${tell}: remainder of ${res.maxCapacity} bytes`);
        }
      }
    }
  }
});

test(`line framer: 1,500 random streams in random chunk sizes, seed ${SEED}`, (t) => {
  t.diagnostic(`FUZZ_SEED=${SEED}`);
  const r = new Rand(SEED);
  let lines = 0;
  let overlong = 0;
  for (let n = 0; n < 1500; n++) {
    const max = r.pick([1, 3, 16, 64, 300, 1024]);
    const stream = randomStream(r, max, 1 + r.int(40));
    const want = reference(stream, max);
    const res = frame(randomChunks(r, stream, max), max);
    assert.deepEqual(res.events, want, `seed ${SEED}, stream ${n}, max ${max}`);
    assert.ok(res.maxCapacity <= capacityBound(max), `seed ${SEED}, stream ${n}: remainder of ${res.maxCapacity} bytes`);
    for (const e of want) {
      if (typeof e === 'string') lines++;
      else overlong++;
    }
  }
  t.diagnostic(`${lines} lines and ${overlong} overlong lines framed exactly`);
});

test(`line framer: megabytes of input, a line of 3 MiB among short ones, chunks up to 256 KiB, seed ${SEED}`, () => {
  const r = new Rand(SEED);
  const max = 8192;
  const short = randomStream(r, 64, 20000);
  const stream = Buffer.concat([short, Buffer.from('\n'), Buffer.alloc(3 << 20, 0x78), Buffer.from('\nlast:1|c\n'), short]);
  const chunks: Buffer[] = [];
  for (let p = 0; p < stream.length; ) {
    const n = 1 + r.int(256 << 10);
    chunks.push(stream.subarray(p, p + n));
    p += n;
  }
  const res = frame(chunks, max);
  assert.deepEqual(res.events, reference(stream, max), `seed ${SEED}`);
  assert.ok(res.events.some((e) => typeof e !== 'string' && e.overlong === 3 << 20), 'the 3 MiB line is reported with its length');
  assert.ok(res.maxCapacity <= capacityBound(max), `remainder of ${res.maxCapacity} bytes`);
});
