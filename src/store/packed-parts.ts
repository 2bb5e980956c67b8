/**
 * The packed form of a batch's share of one shard (the "part"): each merge
 * appends its part to the period's string (mergeBatch-11.lua, layout 3), with
 * no Redis command a name, and the shard's leader folds the parts in merge
 * order at flush (flush/fold-parts.ts) with the semantics layout 2's
 * mergeBatch-15 had in Redis. Parts carry counters, timers and sets; a merge
 * sends its gauges as ARGV (they stay hashes), so the gauges section of a
 * stored part is empty (the fold and its test use it).
 *
 * A part is framed so that parts appended one after another read back apart:
 *
 *   u32 LE  bytes after this field
 *   u8      format version (1)
 *   u8      flags: 1 = late (the batch's own period closed before it was merged), 2 = tombstone (statsd's
 *           delcounters / deltimers: the counters and timers it names leave the period as folded so far;
 *           their values are 0), 4 = compacted (the leader's fold of earlier parts, flush/compact-parts.ts:
 *           each counter, timer and set carries a u32 after its name, the number of parts it stands for,
 *           and the gauges section is empty); other bits must be 0
 *   then four sections, each a u32 LE count and its items, in the order mergeBatch-15 applied them:
 *   counters  (name, f64 sum of value * 1/rate)
 *   timers    (name, f64 sum of 1/rate, u32 k, k x f64 samples)
 *   gauges    (name, u8 'd' | 's', f64)
 *   sets      (name, u32 m, m x member)
 *
 * Strings are a u32 LE byte length and UTF-8; numbers are float64 LE, so
 * every value reads back as the double the batch held (no text a number).
 * A timer's count comes with its samples: mergeBatch-15 decided every
 * timer's admission on the counts before it takes any samples, and the
 * decisions depend on the counts' order only, which is the same.
 */
import { SLICE } from '../flush/slices.js';

export const PART_VERSION = 1;
export const FLAG_LATE = 1;
const FLAG_TOMBSTONE = 2;
export const FLAG_COMPACTED = 4;
const KNOWN_FLAGS = FLAG_LATE | FLAG_TOMBSTONE | FLAG_COMPACTED;
const MODE_SET = 0x73; // 's'
const MODE_DELTA = 0x64; // 'd'
/** Bytes before the sections: length, version, flags. */
const HEADER = 6;

/** A growable little-endian writer. */
class Writer {
  buf: Buffer;
  at = 0;

  constructor(size: number) {
    this.buf = Buffer.allocUnsafe(size);
  }

  private room(n: number): void {
    if (this.at + n <= this.buf.length) return;
    const b = Buffer.allocUnsafe(Math.max(this.buf.length * 2, this.at + n));
    this.buf.copy(b, 0, 0, this.at);
    this.buf = b;
  }

  u8(v: number): void {
    this.room(1);
    this.buf[this.at++] = v;
  }

  u32(v: number): void {
    this.room(4);
    this.buf.writeUInt32LE(v, this.at);
    this.at += 4;
  }

  f64(v: number): void {
    this.room(8);
    this.buf.writeDoubleLE(v, this.at);
    this.at += 8;
  }

  str(s: string): void {
    // At most 3 bytes a UTF-16 unit; the length is written once the bytes are.
    this.room(4 + s.length * 3);
    const n = this.buf.write(s, this.at + 4, 'utf8');
    this.buf.writeUInt32LE(n, this.at);
    this.at += 4 + n;
  }

  f64s(values: Float64Array, start: number, end: number): void {
    this.room((end - start) * 8);
    for (let i = start; i < end; i++) {
      this.buf.writeDoubleLE(values[i]!, this.at);
      this.at += 8;
    }
  }
}

/**
 * One part, written item by item in section order (counters, timers, gauges, sets); an item of a later section
 * closes the earlier ones, empty if nothing was written to them.
 */
export class PartWriter {
  private readonly w = new Writer(256);
  private section = -1;
  private countAt = -1;
  private count = 0;
  /** Items written. */
  items = 0;
  /** A compacted part: each item carries the number of parts it stands for. */
  private readonly compacted: boolean;

  constructor(flags = 0) {
    this.compacted = (flags & FLAG_COMPACTED) !== 0;
    this.w.u32(0);
    this.w.u8(PART_VERSION);
    this.w.u8(flags);
  }

  /** Bytes written so far. */
  get bytes(): number {
    return this.w.at;
  }

  private to(k: number): void {
    if (k < this.section) throw new Error(`a part's sections go in order: section ${k} after ${this.section}`);
    while (this.section < k) {
      if (this.section >= 0) this.w.buf.writeUInt32LE(this.count, this.countAt);
      this.section++;
      this.countAt = this.w.at;
      this.count = 0;
      this.w.u32(0);
    }
    this.count++;
    this.items++;
  }

  /** `parts`: in a compacted part, how many parts the item stands for (ignored in others). */
  counter(name: string, value: number, parts = 1): void {
    this.to(0);
    this.w.str(name);
    if (this.compacted) this.w.u32(parts);
    this.w.f64(value);
  }

  timer(name: string, count: number, samples: Float64Array, from: number, to: number, parts = 1): void {
    this.to(1);
    this.w.str(name);
    if (this.compacted) this.w.u32(parts);
    this.w.f64(count);
    this.w.u32(to - from);
    this.w.f64s(samples, from, to);
  }

  gauge(name: string, delta: boolean, value: number): void {
    if (this.compacted) throw new Error('a compacted part carries no gauges');
    this.to(2);
    this.w.str(name);
    this.w.u8(delta ? MODE_DELTA : MODE_SET);
    this.w.f64(value);
  }

  set(name: string, members: Iterable<string>, size: number, parts = 1): void {
    this.to(3);
    this.w.str(name);
    if (this.compacted) this.w.u32(parts);
    this.w.u32(size);
    for (const m of members) this.w.str(m);
  }

  /** The part's bytes, in a buffer of their own size. */
  finish(): Buffer {
    if (this.section >= 0) this.w.buf.writeUInt32LE(this.count, this.countAt);
    for (; this.section < 3; this.section++) this.w.u32(0); // the sections after the last one written, empty
    this.w.buf.writeUInt32LE(this.w.at - 4, 0);
    return Buffer.from(this.w.buf.subarray(0, this.w.at));
  }
}

/** A copy of a packed part (or of parts appended one after another, for the first) with its late flag set. */
export function markedLate(part: Buffer): Buffer {
  const c = Buffer.from(part);
  c[5] = c[5]! | FLAG_LATE;
  return c;
}

/** A tombstone part: the counters and timers named leave the period as folded up to it (statsd's delcounters, deltimers). */
export function tombstonePart(counters: readonly string[], timers: readonly string[]): Buffer {
  const p = new PartWriter(FLAG_TOMBSTONE);
  for (const n of counters) p.counter(n, 0);
  const none = new Float64Array(0);
  for (const n of timers) p.timer(n, 0, none, 0, 0);
  return p.finish();
}

/**
 * What a reader of parts is told, item by item, in the order of the part. `parts` is the number of parts an item
 * stands for: 1, or more in a compacted part (the bound counts a dropped name once a part it was in).
 */
export interface PartVisitor {
  /** A new part starts; late as the merge recorded it; a tombstone's counters and timers are names to take out. */
  part(late: boolean, tombstone: boolean): void;
  counter(name: string, value: number, parts: number): void;
  /** A timer's count (sum of 1/rate) and its samples, samples[from, to) (the array is reused: copy what is kept). */
  timer(name: string, count: number, samples: Float64Array, from: number, to: number, parts: number): void;
  gauge(name: string, delta: boolean, value: number): void;
  /** A set's distinct members in this part. */
  set(name: string, members: readonly string[], parts: number): void;
  /** The part is over (its items all visited). */
  end(): void;
}

/** A part that does not read back (cut short, a count past its bytes, an unknown version or flag). */
export class PackedPartError extends Error {}

/**
 * Checks that the part in buf[start, end) is whole (every length and count within it, nothing left over, a
 * known version and flags), without decoding a string: a part that fails is never half visited.
 */
function checkPart(buf: Buffer, start: number, end: number, index: number): void {
  const fail = (why: string): never => {
    throw new PackedPartError(`part ${index} (bytes ${start}..${end}): ${why}`);
  };
  if (end - start < 2) fail('cut short in its header');
  if (buf[start]! !== PART_VERSION) fail(`format version ${buf[start]!}, this tallyd reads ${PART_VERSION}`);
  if ((buf[start + 1]! & ~KNOWN_FLAGS) !== 0) fail(`unknown flags ${buf[start + 1]!}`);
  const extra = (buf[start + 1]! & FLAG_COMPACTED) !== 0 ? 4 : 0; // a compacted part's items carry their part count
  // Straight-line walks: before each u32 is read, 4 bytes of it must lie within the part; `at` past `end` is the
  // failure, checked once a section.
  let at = start + 2;
  /** A u32 at `at` (advancing past it), or -1 when it does not lie within the part. */
  const u32 = (): number => {
    if (at + 4 > end) return -1;
    at += 4;
    return buf.readUInt32LE(at - 4);
  };
  let n = u32();
  for (; n > 0; n--) {
    const len = u32(); // name, [parts], f64
    if (len < 0 || (at += len + extra + 8) > end) break;
  }
  if (n !== 0) fail('the counters run past the part');
  n = u32();
  for (; n > 0; n--) {
    const len = u32(); // name, [parts], count, k samples
    if (len < 0 || (at += len + extra + 8) > end) break;
    const k = u32();
    if (k < 0 || (at += 8 * k) > end) break;
  }
  if (n !== 0) fail('the timers run past the part');
  n = u32();
  if (extra > 0 && n > 0) fail('a compacted part with gauges');
  for (; n > 0; n--) {
    const len = u32(); // name, mode, f64
    if (len < 0 || (at += len + 9) > end) break;
    const mode = buf[at - 9]!;
    if (mode !== MODE_SET && mode !== MODE_DELTA) fail(`a gauge's mode is ${mode}`);
  }
  if (n !== 0) fail('the gauges run past the part');
  n = u32();
  for (; n > 0; n--) {
    const len = u32(); // name, [parts], m members
    if (len < 0 || (at += len + extra) > end) break;
    let m = u32();
    for (; m > 0; m--) {
      const ml = u32();
      if (ml < 0 || (at += ml) > end) break;
    }
    if (m !== 0) break;
  }
  if (n !== 0) fail('the sets run past the part');
  if (at !== end) fail(`${end - at} bytes past its sections`);
}

/**
 * Reads parts appended one after another (a period's string), calling the visitor for each item in order; each
 * part is checked whole before any of it is visited. Returns the number of parts.
 */
export function readParts(buf: Buffer, visitor: PartVisitor): number {
  const g = readPartsSliced(buf, visitor);
  for (;;) {
    const r = g.next();
    if (r.done === true) return r.value;
  }
}

/** readParts in slices (flush/slices.ts): it yields between parts once SLICE items were visited since the last yield. */
export function* readPartsSliced(buf: Buffer, visitor: PartVisitor): Generator<void, number, void> {
  let sinceYield = 0;
  let at = 0;
  let parts = 0;
  let samples = new Float64Array(64);
  const members: string[] = [];
  const str = (): string => {
    const n = buf.readUInt32LE(at);
    const s = buf.toString('utf8', at + 4, at + 4 + n);
    at += 4 + n;
    return s;
  };
  const f64 = (): number => {
    const v = buf.readDoubleLE(at);
    at += 8;
    return v;
  };
  const u32 = (): number => {
    const v = buf.readUInt32LE(at);
    at += 4;
    return v;
  };
  while (at < buf.length) {
    if (buf.length - at < HEADER) throw new PackedPartError(`part ${parts} (bytes ${at}..${buf.length}): cut short in its header`);
    const length = buf.readUInt32LE(at);
    const end = at + 4 + length;
    if (end > buf.length) throw new PackedPartError(`part ${parts} says ${length} bytes, ${buf.length - at - 4} left`);
    checkPart(buf, at + 4, end, parts);
    at += 4;
    at++; // the version, checked
    const flags = buf[at++]!;
    const compacted = (flags & FLAG_COMPACTED) !== 0;
    visitor.part((flags & FLAG_LATE) !== 0, (flags & FLAG_TOMBSTONE) !== 0);
    for (let n = u32(); n > 0; n--) {
      const name = str();
      const times = compacted ? u32() : 1;
      visitor.counter(name, f64(), times);
    }
    for (let n = u32(); n > 0; n--) {
      const name = str();
      const times = compacted ? u32() : 1;
      const count = f64();
      const k = u32();
      if (samples.length < k) samples = new Float64Array(Math.max(k, samples.length * 2));
      for (let i = 0; i < k; i++) samples[i] = f64();
      visitor.timer(name, count, samples, 0, k, times);
    }
    for (let n = u32(); n > 0; n--) {
      const name = str();
      const mode = buf[at++]!;
      visitor.gauge(name, mode === MODE_DELTA, f64());
    }
    for (let n = u32(); n > 0; n--) {
      const name = str();
      const times = compacted ? u32() : 1;
      members.length = 0;
      for (let m = u32(); m > 0; m--) members.push(str());
      visitor.set(name, members, times);
    }
    visitor.end();
    parts++;
    sinceYield += length >> 5; // ~ items (an item is 20-40 bytes)
    if (sinceYield >= SLICE) {
      sinceYield = 0;
      yield;
    }
  }
  return parts;
}
