/**
 * Fuzz section: zmqInflate (zmq_inflate.c) over clean zlib streams into out
 * Buffers of every interesting size, then the same streams bit-flipped,
 * truncated at every byte, with bytes appended, as raw deflate and gzip,
 * and random bytes. Besides ASan/UBSan staying silent, every answer must be
 * one node:zlib agrees with: n >= 0 only for a stream inflateSync inflates to
 * exactly those bytes, -1 only when the stream inflates to more than out holds.
 */
import assert from 'node:assert/strict';
import { deflateRawSync, deflateSync, gzipSync, inflateSync } from 'node:zlib';
import type { TallydAddon } from '../../src/native/addon.js';
import { exact, type Gen, truncations } from './mutate.js';

function inflated(frame: Buffer): Buffer | null {
  try {
    return inflateSync(frame);
  } catch {
    return null;
  }
}

/** One call, checked against node:zlib. */
function check(lib: TallydAddon, frame: Buffer, outLen: number, what: string): number {
  const out = exact(outLen);
  const n = lib.zmqInflate(frame, out);
  assert.ok(Number.isInteger(n) && n >= -2 && n <= outLen, `${what}: zmqInflate answered ${n} (out ${outLen})`);
  if (n >= 0) {
    const want = inflated(frame);
    assert.ok(want !== null, `${what}: zmqInflate inflated ${n} bytes from a stream node:zlib rejects`);
    assert.ok(want.equals(out.subarray(0, n)), `${what}: zmqInflate's ${n} bytes differ from node:zlib's ${want.length}`);
  } else if (n === -1) {
    const want = inflated(frame);
    if (want !== null) assert.ok(want.length > outLen, `${what}: "out too small" for ${want.length} bytes into ${outLen}`);
  }
  return n;
}

function payload(g: Gen): Buffer {
  switch (g.int(4)) {
    case 0:
      return g.bytes(g.int(3000));
    case 1: {
      const items = Array.from({ length: g.int(40) }, (_, i) => ({ name: `app.m${i}.${g.int(1000)}`, value: g.next() * 1e6, time: 1_796_000_000 + i, type: g.pick(['c', 'g', 'ms']) }));
      return Buffer.from(JSON.stringify(items));
    }
    case 2:
      return Buffer.alloc(g.int(200_000), g.pick(['a', '[', '0'])); // compresses ~1000:1
    default:
      return Buffer.from(Array.from({ length: g.int(50) }, (_, i) => `lines.m${i}:${g.int(100)}|c`).join('\n'));
  }
}

export function fuzzInflate(lib: TallydAddon, g: Gen, rounds: number): number {
  let calls = 0;
  for (let r = 0; r < rounds; r++) {
    const p = payload(g);
    const frame = exact(deflateSync(p, { level: g.int(10) }));
    // A clean stream: exactly as long, longer, and shorter outs.
    assert.equal(check(lib, frame, p.length, `clean ${p.length}`), p.length, `clean stream of ${p.length} bytes into an exact out`);
    assert.equal(check(lib, frame, p.length + 1 + g.int(100), `clean ${p.length}, larger out`), p.length);
    if (p.length > 1) assert.equal(check(lib, frame, 1 + g.int(p.length - 1), `clean ${p.length}, smaller out`), -1);
    assert.equal(check(lib, frame, 0, `clean ${p.length}, empty out`), p.length > 0 ? -1 : 0, `clean stream of ${p.length} bytes into an empty out`);
    calls += 4;
    // Mutations of it; other framings; trailing bytes; random frames.
    for (let m = 0; m < 20; m++) check(lib, g.mutate(frame), p.length + g.int(64), `mutated #${m}`);
    check(lib, exact(Buffer.concat([frame, g.bytes(1 + g.int(4))])), p.length + 8, 'trailing bytes');
    check(lib, exact(deflateRawSync(p)), p.length + 8, 'raw deflate');
    check(lib, exact(gzipSync(p)), p.length + 8, 'gzip');
    check(lib, g.bytes(g.int(512)), 4096, 'random bytes');
    calls += 24;
    // Truncated at every byte (short streams only: the pass stays quick).
    if (frame.length <= 600) {
      for (const t of truncations(frame)) {
        const n = check(lib, t, p.length + 16, `truncated to ${t.length}`);
        assert.ok(n < 0, `a stream cut to ${t.length} of ${frame.length} bytes inflated (${n})`);
        calls++;
      }
    }
  }
  // Bad arguments answer with a TypeError, never a crash.
  const bad = lib as unknown as { zmqInflate(...args: unknown[]): number };
  for (const args of [[], [Buffer.alloc(1)], [Buffer.alloc(1), 'x'], ['x', Buffer.alloc(1)], [Buffer.alloc(1), 42]]) {
    assert.throws(() => bad.zmqInflate(...args), TypeError);
  }
  return calls;
}
