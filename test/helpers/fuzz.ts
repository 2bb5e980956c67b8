/**
 * Fuzz input for the statsd line parser and the TCP framer: a seeded PRNG,
 * a corpus of valid statsd / DogStatsD lines of every type, mutators (bit
 * flips, byte insertions and deletions, truncation, splices, huge and tiny
 * numbers, Unicode whitespace, invalid UTF-8, very long names and lines),
 * and known-good lines whose exact totals the test knows.
 *
 * Good lines and garbage cannot be confused: every good name contains 'Q'
 * (GOOD_PREFIX), and garbage never contains the byte 'Q' (0x51; the mutators
 * turn it into 'R'). Sanitizing only drops bytes or maps whitespace to '_'
 * and '/' to '-', so no garbage line can produce a key with a 'Q' in it.
 *
 * The seed is FUZZ_SEED from the environment when set (decimal or 0x hex),
 * else a fixed one; tests print it so a failure can be replayed.
 */
import type { SampleSink } from '../../src/parse/sample-sink.js';

export const DEFAULT_FUZZ_SEED = 0x10f022;

/** The seed of this run: FUZZ_SEED or the fixed default. */
export function fuzzSeed(): number {
  const env = process.env.FUZZ_SEED;
  if (env === undefined || env === '') return DEFAULT_FUZZ_SEED;
  const n = Number(env);
  if (!Number.isSafeInteger(n)) throw new Error(`FUZZ_SEED must be an integer, got ${JSON.stringify(env)}`);
  return n >>> 0;
}

/** mulberry32: small, fast, deterministic. */
export class Rand {
  private a: number;
  constructor(seed: number) {
    this.a = seed >>> 0;
  }
  /** Uniform in [0, 1). */
  next(): number {
    this.a = (this.a + 0x6d2b79f5) >>> 0;
    let t = this.a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }
  /** Integer in [0, n). */
  int(n: number): number {
    return Math.floor(this.next() * n);
  }
  pick<T>(xs: readonly T[]): T {
    return xs[this.int(xs.length)]!;
  }
  chance(p: number): boolean {
    return this.next() < p;
  }
}

/** Valid lines of every type and field form (none contains 'Q'). */
export const VALID_LINES: readonly string[] = [
  'fz.c:1|c', 'fz.c:2.5|c|@0.5', 'fz.c:-3|c|@0.1', 'fz.c:1e3|c', 'fz.c:.5|c', 'fz.c:5.|c',
  'fz.g:42|g', 'fz.g:+4|g', 'fz.g:-3|g', 'fz.g:0.125|g', 'fz.g:-0|g',
  'fz.t:12|ms', 'fz.t:3|ms|@0.25', 'fz.t:0|ms', 'fz.h:-1.5|h', 'fz.d:7|d', 'fz.d:1e-3|d|@0.5',
  'fz.s:user1|s', 'fz.s:|s', 'fz.s:42|s|#env:prod',
  'fz.tag:1|c|#env:prod,az:b', 'fz.tag:1|c|@0.5|#env:prod', 'fz.tag:1|c|#flag|@0.5', 'fz.tag:9|ms|#a:b:c,d;e',
  'fz.multi:1|c:2|c', 'fz.multi:1|c:5|ms:7|g', 'fz.multi:1|c|@0.5:2|c|#t:v',
  'fz.ts:1|c|T1700000000', 'fz.origin:1|c|c:container-id|card:low|e:ext',
  'fz sp/ace:1|c', 'fz.r:1|c\r', 'fz.trail:2|g  ',
  '_e{5,4}:title|text|#a:b', '_e{1,1}:a|b', '_sc|svc.check|0|#a:b|m:message', '_sc|x|2',
];

/** Values that are huge, tiny, not decimals or oddly spaced. */
export const STRANGE_NUMBERS: readonly string[] = [
  '1e308', '-1e308', '1.7976931348623157e308', '1.7976931348623159e308', '1e-320', '-1e-320', '4.9e-324',
  '1e400', '-1e400', '1e-400', '0x10', 'Infinity', '-Infinity', 'NaN', '-0', '+0', ' 1 ', ' ', '\t2\t',
  '1_000', '1e', 'e5', '.', '+', '-', '', '--1', '+-1', '1..2', '1e+', '1e5.5', '9'.repeat(400),
  '0.' + '0'.repeat(400) + '1', '123456789012345678901234567890', '1' + 'e'.repeat(3),
  '\u00a01', '1\u3000', '\ufeff3', '\u20281',
];

export const STRANGE_RATES: readonly string[] = [
  '@0', '@1', '@2', '@-1', '@0.5', '@1e-320', '@1e-400', '@NaN', '@Infinity', '@', '@ 0.5', '@1e-1', '@+0.5', '@0x1',
];

/** UTF-8 of JavaScript whitespace that statsd's `\s` and `Number()` see: NBSP, U+3000, BOM, U+2028, U+1680, U+205F. */
export const UNICODE_SPACES: readonly Buffer[] = ['\u00a0', '\u3000', '\ufeff', '\u2028', '\u1680', '\u205f'].map((s) => Buffer.from(s));

/** Invalid UTF-8: stray continuation, overlong, surrogate, beyond U+10FFFF, truncated sequences. */
export const INVALID_UTF8: readonly Buffer[] = [
  [0xff], [0xfe], [0x80], [0xc0, 0x80], [0xc2], [0xe3, 0x80], [0xed, 0xa0, 0x80], [0xf4, 0x90, 0x80, 0x80], [0xef, 0xbb],
].map((b) => Buffer.from(b));

/** Bytes the statsd grammar gives a meaning, more likely to be inserted than others. */
const SPECIAL_BYTES = Buffer.from(':|@#,\n\r\0 \t+-.e_{}Tcgsmhd;=/');

const Q = 0x51;

function concat(parts: readonly Buffer[]): Buffer {
  return Buffer.concat(parts);
}

/** Garbage never contains 'Q' (see the header): it becomes 'R'. */
export function withoutQ(buf: Buffer): Buffer {
  for (let i = 0; i < buf.length; i++) if (buf[i] === Q) buf[i] = Q + 1;
  return buf;
}

function randomByte(r: Rand): number {
  return r.chance(0.5) ? SPECIAL_BYTES[r.int(SPECIAL_BYTES.length)]! : r.int(256);
}

/** One random mutation of buf (a new Buffer). */
export function mutateOnce(buf: Buffer, r: Rand): Buffer {
  const at = r.int(buf.length + 1);
  switch (r.int(12)) {
    case 0: { // bit flip
      if (buf.length === 0) return Buffer.from([randomByte(r)]);
      const out = Buffer.from(buf);
      const i = r.int(out.length);
      out[i] = out[i]! ^ (1 << r.int(8));
      return out;
    }
    case 1: // insert a byte
      return concat([buf.subarray(0, at), Buffer.from([randomByte(r)]), buf.subarray(at)]);
    case 2: // delete 1..4 bytes
      return concat([buf.subarray(0, at), buf.subarray(Math.min(buf.length, at + 1 + r.int(4)))]);
    case 3: // truncate
      return buf.subarray(0, at);
    case 4: { // splice with a corpus line
      const other = Buffer.from(r.pick(VALID_LINES));
      return concat([buf.subarray(0, at), other.subarray(r.int(other.length + 1))]);
    }
    case 5: { // a strange number in place of a value (after a ':'), or anywhere
      const colon = buf.indexOf(0x3a, r.int(Math.max(1, buf.length)));
      const s = colon >= 0 ? colon + 1 : at;
      const bar = buf.indexOf(0x7c, s);
      const e = bar >= 0 ? bar : buf.length;
      return concat([buf.subarray(0, s), Buffer.from(r.pick(STRANGE_NUMBERS)), buf.subarray(e)]);
    }
    case 6: // a strange rate field
      return concat([buf.subarray(0, at), Buffer.from('|' + r.pick(STRANGE_RATES)), buf.subarray(at)]);
    case 7: // Unicode whitespace
      return concat([buf.subarray(0, at), r.pick(UNICODE_SPACES), buf.subarray(at)]);
    case 8: // invalid UTF-8
      return concat([buf.subarray(0, at), r.pick(INVALID_UTF8), buf.subarray(at)]);
    case 9: { // duplicate a slice somewhere else
      const s = r.int(buf.length + 1);
      const piece = buf.subarray(s, s + 1 + r.int(12));
      return concat([buf.subarray(0, at), piece, buf.subarray(at)]);
    }
    case 10: // very long: a name of 1,000+ bytes, or 64+ values on one line
      return r.chance(0.5)
        ? concat([Buffer.from('n'.repeat(1000 + r.int(100))), buf])
        : concat([buf, Buffer.from(':1|c'.repeat(60 + r.int(10)))]);
    default: { // random bytes
      const n = 1 + r.int(8);
      const bytes = Buffer.alloc(n);
      for (let i = 0; i < n; i++) bytes[i] = randomByte(r);
      return concat([buf.subarray(0, at), bytes, buf.subarray(at)]);
    }
  }
}

/** A garbage line: a corpus line mutated 1..4 times (without 'Q'; may hold '\n' and so be several lines). */
export function garbageLine(r: Rand): Buffer {
  let b: Buffer = Buffer.from(r.pick(VALID_LINES));
  const n = 1 + r.int(4);
  for (let i = 0; i < n; i++) b = mutateOnce(b, r);
  return withoutQ(Buffer.from(b));
}

/**
 * Systematic garbage: every corpus line truncated at every byte, with every
 * bit of every byte flipped, and with every byte deleted.
 */
export function* systematicGarbage(): Generator<Buffer> {
  for (const line of VALID_LINES) {
    const buf = Buffer.from(line);
    for (let i = 0; i <= buf.length; i++) yield buf.subarray(0, i);
    for (let i = 0; i < buf.length; i++) {
      for (let bit = 0; bit < 8; bit++) {
        const out = Buffer.from(buf);
        out[i] = out[i]! ^ (1 << bit);
        yield withoutQ(out);
      }
      yield concat([buf.subarray(0, i), buf.subarray(i + 1)]);
    }
  }
}

/** Every good name starts with this; garbage can never produce a 'Q'. */
export const GOOD_PREFIX = 'GOODQ';

/** Exact totals of the good lines handed out so far, folded as statsd (and Batch) fold one period. */
export class GoodTotals {
  readonly counters = new Map<string, number>();
  readonly timers = new Map<string, { values: number[]; count: number }>();
  /** Gauges: the last absolute value plus the deltas after it (a delta with no value before it is added to 0). */
  readonly gauges = new Map<string, number>();
  readonly sets = new Map<string, Set<string>>();
  lines = 0;

  /**
   * prefix: where the names start (it must contain 'Q'); uniqueMembers: every
   * set line gets a new member, so per-period set counts add up to the total.
   */
  constructor(
    private readonly prefix = GOOD_PREFIX,
    private readonly uniqueMembers = false,
  ) {
    if (!prefix.includes('Q')) throw new Error(`good names must contain 'Q': ${prefix}`);
  }

  /** A random good line (its totals recorded), drawn from a few names per type so that names repeat. */
  next(r: Rand): string {
    this.lines++;
    const k = r.int(4);
    const v = 1 + r.int(50);
    switch (r.int(7)) {
      case 0: {
        const rate = r.pick([1, 0.5, 0.25]);
        this.addCounter(`${this.prefix}.c${k}`, v / rate);
        return `${this.prefix}.c${k}:${v}|c${rate === 1 ? '' : `|@${rate}`}`;
      }
      case 1: {
        this.addCounter(`${this.prefix}.tagged;env=fz;az=a${k}`, v);
        return `${this.prefix}.tagged:${v}|c|#env:fz,az:a${k}`;
      }
      case 2: {
        const rate = r.pick([1, 0.5]);
        this.addTimer(`${this.prefix}.t${k}`, v, 1 / rate);
        return `${this.prefix}.t${k}:${v}|ms${rate === 1 ? '' : `|@${rate}`}`;
      }
      case 3: {
        const name = `${this.prefix}.g${k}`;
        const delta = this.gauges.has(name) && r.chance(0.5);
        const sv = delta && r.chance(0.5) ? -v : v;
        this.gauges.set(name, delta ? this.gauges.get(name)! + sv : v);
        return `${name}:${delta && sv > 0 ? '+' : ''}${sv}|g`;
      }
      case 4: {
        const name = `${this.prefix}.s${k}`;
        const member = this.uniqueMembers ? `m${this.lines}` : `m${r.int(20)}`;
        let m = this.sets.get(name);
        if (m === undefined) this.sets.set(name, (m = new Set()));
        m.add(member);
        return `${name}:${member}|s`;
      }
      case 5: {
        this.addCounter(`${this.prefix}.multi${k}`, v);
        this.addTimer(`${this.prefix}.multi${k}`, v + 1, 1);
        return `${this.prefix}.multi${k}:${v}|c:${v + 1}|ms`;
      }
      default: {
        this.addTimer(`${this.prefix}.h${k}`, -v, 1);
        return `${this.prefix}.h${k}:${-v}|${r.pick(['h', 'd'])}`;
      }
    }
  }

  private addCounter(name: string, v: number): void {
    this.counters.set(name, (this.counters.get(name) ?? 0) + v);
  }

  private addTimer(name: string, v: number, count: number): void {
    let t = this.timers.get(name);
    if (t === undefined) this.timers.set(name, (t = { values: [], count: 0 }));
    t.values.push(v);
    t.count += count;
  }
}

/**
 * A packet of n lines: good lines (recorded in good) and garbage, shuffled,
 * joined by '\n'. Returns the bytes.
 */
export function mixedPacket(r: Rand, good: GoodTotals, n: number, goodShare = 0.3): Buffer {
  const parts: Buffer[] = [];
  for (let i = 0; i < n; i++) {
    parts.push(r.chance(goodShare) ? Buffer.from(good.next(r)) : garbageLine(r));
    if (i < n - 1) parts.push(Buffer.from('\n'));
  }
  return concat(parts);
}

/** What a sanitized key may hold (statsd's sanitizeKeyName keeps these). */
export const SANITIZED_KEY = /^[A-Za-z0-9_.;=-]+$/;

/** A failed invariant, with the input that broke it. */
export function describeInput(buf: Buffer): string {
  const text = buf.toString('latin1');
  return JSON.stringify(text.length > 300 ? text.slice(0, 300) + '...' : text);
}

/** A sink that checks every sample the parser hands it and folds them like one period. */
export class CheckingSink implements SampleSink {
  readonly counters = new Map<string, number>();
  readonly timers = new Map<string, { values: number[]; count: number }>();
  readonly gauges = new Map<string, number>();
  readonly sets = new Map<string, Set<string>>();
  samples = 0;
  /** Problems found (the test asserts this is empty, and prints them). */
  readonly problems: string[] = [];

  constructor(
    private readonly sanitized: boolean,
    private readonly maxKeyBytes = 1024,
  ) {}

  counter(name: string, value: number, rate: number, key?: number): void {
    this.check('counter', name, value, key);
    this.checkRate(name, rate);
    const sum = (this.counters.get(name) ?? 0) + value * (1 / rate);
    if (sum === sum) this.counters.set(name, sum);
  }

  gauge(name: string, value: number, delta: boolean, key?: number): void {
    this.check('gauge', name, value, key);
    this.gauges.set(name, delta ? (this.gauges.get(name) ?? 0) + value : value);
  }

  timer(name: string, value: number, rate: number, key?: number): void {
    this.check('timer', name, value, key);
    this.checkRate(name, rate);
    let t = this.timers.get(name);
    if (t === undefined) this.timers.set(name, (t = { values: [], count: 0 }));
    t.values.push(value);
    t.count += 1 / rate;
  }

  set(name: string, member: string): void {
    this.check('set', name, 0, undefined);
    if (typeof member !== 'string' || /[\n:|]/.test(member)) this.problems.push(`set ${name}: member ${JSON.stringify(member)}`);
    let m = this.sets.get(name);
    if (m === undefined) this.sets.set(name, (m = new Set()));
    m.add(member);
  }

  private check(type: string, name: string, value: number, key: number | undefined): void {
    this.samples++;
    if (!Number.isFinite(value)) this.problems.push(`${type} ${JSON.stringify(name)}: value ${value}`);
    if (name.length === 0) this.problems.push(`${type}: empty name`);
    if (Buffer.byteLength(name) > this.maxKeyBytes) this.problems.push(`${type}: key of ${Buffer.byteLength(name)} bytes`);
    if (this.sanitized ? !SANITIZED_KEY.test(name) : /[\n]/.test(name)) this.problems.push(`${type}: name ${JSON.stringify(name)}`);
    if (key !== undefined && !Number.isInteger(key)) this.problems.push(`${type} ${name}: key ${key}`);
  }

  private checkRate(name: string, rate: number): void {
    if (!(rate > 0 && rate <= 1 && Number.isFinite(1 / rate))) this.problems.push(`${name}: rate ${rate}`);
  }
}

/** The good names' part of a fold (names that start with GOOD_PREFIX), for comparison with GoodTotals. */
export function goodPart<V>(m: ReadonlyMap<string, V>): Map<string, V> {
  return new Map([...m].filter(([k]) => k.startsWith(GOOD_PREFIX)));
}
