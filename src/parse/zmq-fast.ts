/**
 * The fast path for the usual ZeroMQ status message in aggregate mode: a
 * JSON array (or one object) of plain items such as
 * `{"name": "api.rss", "value": 123, "time": 1796000000, "type": "c"}`,
 * read straight from the inflated bytes into the sink, without JSON.parse,
 * an object per item or a string per name: names go through an intern table
 * (key-intern.ts) like statsd lines' keys, numbers through decimalInto.
 *
 * It takes only what it can read exactly as the general path
 * (zmq-message.ts + zmq-item.ts) would, and answers -1 for anything else:
 * escapes or non-ASCII bytes in a string, `tags`, a set (`type: "s"`), a
 * nested value, a duplicated member, any item the general path would reject
 * or any JSON it would not parse. The caller then takes the general path for
 * the whole message, so results, bad-item reasons and counters are the same
 * either way. A message is read completely before any of it is emitted.
 * Members other than name, value, time, type and rate are skipped when their
 * value is a string, a number, true, false or null (the general path ignores
 * them too).
 *
 * The scan itself runs in C (native/zmq_scan.c, the same rules, faster:
 * figures in bench/README.md) when
 * tallyd's native addon was built, else here. The C scanner also looks known
 * names up in this reader's intern table; new names are interned here.
 */
import type { SampleSink } from './sample-sink.js';
import { decimalInto } from './number.js';
import { KeyBuilder } from './sanitize.js';
import { finishHash, hashByte, INTERN_MAX_PROBE, KeyInternTable, type InternOptions } from './key-intern.js';
import { nativeAddon, type TallydAddon } from '../native/addon.js';

export interface FastReaderOptions {
  readonly keyNameSanitize: boolean;
  /** Longest accepted name in bytes, prefix not included (as the general path counts). */
  readonly maxNameLength: number;
  /** The socket's prefix, prepended to every name. */
  readonly prefix: string;
  readonly intern?: InternOptions;
  /** Scan with the native addon: true (when it is there; the default) or false (JavaScript, e.g. to test both). */
  readonly native?: boolean;
}

const TAB = 0x09;
const LF = 0x0a;
const CR = 0x0d;
const SPACE = 0x20;
const QUOTE = 0x22;
const BACKSLASH = 0x5c;
const COMMA = 0x2c;
const COLON = 0x3a;
const OPEN_BRACKET = 0x5b;
const CLOSE_BRACKET = 0x5d;
const OPEN_BRACE = 0x7b;
const CLOSE_BRACE = 0x7d;
const MINUS = 0x2d;
const DOT = 0x2e;
const DIGIT_0 = 0x30;
const DIGIT_1 = 0x31;
const DIGIT_9 = 0x39;
const LOWER_E = 0x65;
const UPPER_E = 0x45;
const PLUS = 0x2b;
const DEL = 0x7f;

const T_COUNTER = 1;
const T_GAUGE = 2;
const T_TIMER = 3; // ms: >= 0
const T_HISTOGRAM = 4; // h, d

/** Members seen in the current item (bits), to refuse duplicates. */
const M_NAME = 1;
const M_VALUE = 2;
const M_TIME = 4;
const M_TYPE = 8;
const M_RATE = 16;

/** Largest accepted `time` (zmq-item.ts): beyond it the publisher sends milliseconds. */
const MAX_TIME = 1e11;

/** The fast path gave up: the general path reads the message. */
export const NOT_FAST = -1;

function isWs(b: number): boolean {
  return b === SPACE || b === LF || b === CR || b === TAB;
}

export class ZmqFastReader {
  /** Items read by the last read() that returned >= 0. */
  count = 0;
  readonly intern: KeyInternTable;
  private readonly key: KeyBuilder;
  private readonly seed: number;
  private readonly sanitize: boolean;
  private readonly prefix: string;
  private types = new Uint8Array(64);
  private values = new Float64Array(64);
  private rates = new Float64Array(64);
  private names: string[] = [];
  private keys = new Int32Array(64);
  /** Filled by the native scanner: each item's name bytes and their hash. */
  private nameOff = new Int32Array(64);
  private nameLen = new Int32Array(64);
  private nameHash = new Int32Array(64);
  /** Filled by the native scanner with the intern table's entry of each name, or -1. */
  private entries = new Int32Array(64);
  private readonly native: TallydAddon | null;
  // The name of the item being read, set by resolveName.
  private itemName = '';
  private itemKey = -1;
  /** End of the last token read by a helper (a string's closing quote + 1, a number's last digit + 1). */
  private at = 0;
  private readonly num = new Float64Array(1);

  constructor(opts: FastReaderOptions) {
    this.sanitize = opts.keyNameSanitize;
    this.prefix = opts.prefix;
    this.key = new KeyBuilder(opts.keyNameSanitize, Math.max(1, Math.floor(opts.maxNameLength)));
    this.intern = new KeyInternTable(opts.intern);
    this.seed = this.intern.seed;
    const addon = opts.native === false ? null : nativeAddon();
    this.native = addon === null || typeof addon === 'string' ? null : addon;
  }

  /** Whether the scan runs in C (the native addon) or in JavaScript. */
  get scanner(): 'native' | 'js' {
    return this.native ? 'native' : 'js';
  }

  /**
   * Reads buf[start, end) (inflated text whose first significant byte is
   * '[' or '{'); returns the number of items held for emit(), or NOT_FAST.
   */
  read(buf: Buffer, start: number, end: number): number {
    this.count = 0;
    if (this.native) return this.readNative(this.native, buf, start, end);
    let p = this.skipWs(buf, start, end);
    if (p >= end) return NOT_FAST;
    if (buf[p] === OPEN_BRACE) {
      p = this.readItem(buf, p, end);
      if (p < 0) return NOT_FAST;
    } else {
      if (buf[p] !== OPEN_BRACKET) return NOT_FAST;
      p = this.skipWs(buf, p + 1, end);
      if (p < end && buf[p] === CLOSE_BRACKET) {
        p++;
      } else {
        for (;;) {
          if (p >= end || buf[p] !== OPEN_BRACE) return NOT_FAST;
          p = this.readItem(buf, p, end);
          if (p < 0) return NOT_FAST;
          p = this.skipWs(buf, p, end);
          if (p >= end) return NOT_FAST;
          const b = buf[p];
          p++;
          if (b === CLOSE_BRACKET) break;
          if (b !== COMMA) return NOT_FAST;
          p = this.skipWs(buf, p, end);
        }
      }
    }
    if (this.skipWs(buf, p, end) !== end) return NOT_FAST;
    return this.count;
  }

  /**
   * read() with the C scanner: it fills types, values, rates and the names' places, and looks the names up in
   * the intern table (entries); names it did not find (new ones) are resolved here.
   */
  private readNative(addon: TallydAddon, buf: Buffer, start: number, end: number): number {
    const intern = this.intern;
    const t = intern.lookupTables();
    let n: number;
    for (;;) {
      n = t === null
        ? addon.zmqScan(buf, start, end, this.seed >>> 0, this.types, this.values, this.rates, this.nameOff, this.nameLen, this.nameHash)
        : addon.zmqScan(
          buf, start, end, this.seed >>> 0, this.types, this.values, this.rates, this.nameOff, this.nameLen, this.nameHash,
          this.entries, t.slots, t.slotHash, t.entryOff, t.entryNameLen, t.entryTagLen, t.arena, INTERN_MAX_PROBE,
        );
      if (n !== -2) break;
      this.grow();
    }
    if (n < 0) return NOT_FAST;
    for (let i = 0; i < n; i++) if (!(1 / this.rates[i]! < Infinity)) return NOT_FAST; // the general path rejects it
    const names = this.names;
    const keys = this.keys;
    const entries = this.entries;
    // Entries stay good until the first new name: adding it may clear the table (a new generation).
    let found = t !== null;
    let hits = 0;
    for (let i = 0; i < n; i++) {
      const e = found ? entries[i]! : -1;
      if (e >= 0) {
        names[i] = intern.nameOf(e);
        keys[i] = intern.keyBase + e;
        hits++;
        continue;
      }
      found = false;
      const s = this.nameOff[i]!;
      if (!this.resolveName(buf, s, s + this.nameLen[i]!, this.nameHash[i]!)) {
        intern.countHits(hits);
        return NOT_FAST;
      }
      names[i] = this.itemName;
      keys[i] = this.itemKey;
    }
    intern.countHits(hits);
    this.count = n;
    return n;
  }

  /** Hands the items of the last successful read() to the sink, in order. */
  emit(sink: SampleSink): void {
    const n = this.count;
    for (let i = 0; i < n; i++) {
      const type = this.types[i];
      const name = this.names[i]!;
      const key = this.keys[i]!;
      if (type === T_COUNTER) sink.counter(name, this.values[i]!, this.rates[i]!, key);
      else if (type === T_GAUGE) sink.gauge(name, this.values[i]!, false, key);
      else sink.timer(name, this.values[i]!, this.rates[i]!, key);
    }
    this.count = 0;
  }

  private skipWs(buf: Buffer, p: number, end: number): number {
    while (p < end && isWs(buf[p]!)) p++;
    return p;
  }

  /**
   * One `{...}` at p; the position after it, or -1. Appends the item on
   * success. One function with its state in locals: the member names are
   * matched in place (`"name"`, `"value"`, `"time"`, `"type"`, `"rate"`),
   * whitespace is skipped only where it is found.
   */
  private readItem(buf: Buffer, p: number, end: number): number {
    let seen = 0;
    let type = T_GAUGE;
    let value = 0;
    let rate = 1;
    p++; // '{'
    for (;;) {
      let b = p < end ? buf[p]! : -1;
      while (b === SPACE || b === LF || b === CR || b === TAB) b = ++p < end ? buf[p]! : -1;
      if (b !== QUOTE) return -1; // '}' right after '{' or ',' included: no name / bad JSON
      // The member's name, matched in place; `member` is the bit, 0 for one to skip.
      let member = 0;
      const c = p + 1 < end ? buf[p + 1] : -1;
      if (c === 0x6e && p + 6 <= end && buf[p + 2] === 0x61 && buf[p + 3] === 0x6d && buf[p + 4] === 0x65 && buf[p + 5] === QUOTE) {
        member = M_NAME;
        p += 6;
      } else if (c === 0x76 && p + 7 <= end && buf[p + 2] === 0x61 && buf[p + 3] === 0x6c && buf[p + 4] === 0x75 && buf[p + 5] === 0x65 && buf[p + 6] === QUOTE) {
        member = M_VALUE;
        p += 7;
      } else if (c === 0x74 && p + 6 <= end && buf[p + 5] === QUOTE) {
        const c2 = buf[p + 2];
        const c3 = buf[p + 3];
        const c4 = buf[p + 4];
        if (c2 === 0x69 && c3 === 0x6d && c4 === 0x65) member = M_TIME;
        else if (c2 === 0x79 && c3 === 0x70 && c4 === 0x65) member = M_TYPE;
        else if (c2 === 0x61 && c3 === 0x67 && c4 === 0x73) return -1; // tags: the general path
        if (member !== 0) p += 6;
      } else if (c === 0x72 && p + 6 <= end && buf[p + 2] === 0x61 && buf[p + 3] === 0x74 && buf[p + 4] === 0x65 && buf[p + 5] === QUOTE) {
        member = M_RATE;
        p += 6;
      }
      if (member === 0) {
        const e = this.stringEnd(buf, p + 1, end);
        if (e < 0) return -1;
        p = e + 1;
      } else {
        if (seen & member) return -1; // a duplicate: JSON.parse keeps the last one
        seen |= member;
      }
      b = p < end ? buf[p]! : -1;
      while (b === SPACE || b === LF || b === CR || b === TAB) b = ++p < end ? buf[p]! : -1;
      if (b !== COLON) return -1;
      b = ++p < end ? buf[p]! : -1;
      while (b === SPACE || b === LF || b === CR || b === TAB) b = ++p < end ? buf[p]! : -1;
      if (b === -1) return -1;

      if (member === M_NAME) {
        if (b !== QUOTE) return -1;
        // The string's end and its hash in one pass.
        const s = p + 1;
        let h = this.seed;
        let e = s;
        for (; e < end; e++) {
          const x = buf[e]!;
          if (x === QUOTE) break;
          if (x < SPACE || x >= DEL || x === BACKSLASH) return -1;
          h = hashByte(h, x);
        }
        if (e >= end || e === s || !this.resolveName(buf, s, e, h)) return -1;
        p = e + 1;
      } else if (member === M_VALUE) {
        if (!this.number(buf, p, end)) return -1; // a string value is a set member: the general path
        value = this.num[0]!;
        p = this.at;
      } else if (member === M_TYPE) {
        if (b === QUOTE) {
          const s = p + 1;
          const x = s < end ? buf[s]! : -1;
          const y = s + 1 < end ? buf[s + 1]! : -1;
          if (y === QUOTE) {
            if (x === 0x63) type = T_COUNTER;
            else if (x === 0x67) type = T_GAUGE;
            else if (x === 0x68 || x === 0x64) type = T_HISTOGRAM;
            else return -1; // unknown, or a set (s): the general path
            p = s + 2;
          } else if (x === 0x6d && y === 0x73 && s + 2 < end && buf[s + 2] === QUOTE) {
            type = T_TIMER;
            p = s + 3;
          } else {
            return -1;
          }
        } else if (this.isNull(buf, p, end)) {
          p += 4;
        } else {
          return -1;
        }
      } else if (member === M_TIME) {
        if (this.isNull(buf, p, end)) {
          p += 4;
        } else {
          if (!this.number(buf, p, end)) return -1;
          const t = this.num[0]!;
          if (!(t > 0 && t < MAX_TIME)) return -1; // checked, not used when aggregating
          p = this.at;
        }
      } else if (member === M_RATE) {
        if (this.isNull(buf, p, end)) {
          p += 4;
        } else {
          if (!this.number(buf, p, end)) return -1;
          rate = this.num[0]!;
          if (!(rate > 0 && rate <= 1 && 1 / rate < Infinity)) return -1; // 1e-320: 1/rate not finite
          p = this.at;
        }
      } else {
        p = this.skipScalar(buf, p, end);
        if (p < 0) return -1;
      }

      b = p < end ? buf[p]! : -1;
      while (b === SPACE || b === LF || b === CR || b === TAB) b = ++p < end ? buf[p]! : -1;
      p++;
      if (b === CLOSE_BRACE) break;
      if (b !== COMMA) return -1;
    }
    if ((seen & (M_NAME | M_VALUE)) !== (M_NAME | M_VALUE)) return -1;
    if (type === T_TIMER && value < 0) return -1;
    const i = this.count;
    if (i === this.types.length) this.grow();
    this.types[i] = type;
    this.values[i] = value;
    this.rates[i] = rate;
    this.names[i] = this.itemName;
    this.keys[i] = this.itemKey;
    this.count = i + 1;
    return p;
  }

  private grow(): void {
    const n = this.types.length * 2;
    const t = new Uint8Array(n);
    t.set(this.types);
    this.types = t;
    const v = new Float64Array(n);
    v.set(this.values);
    this.values = v;
    const r = new Float64Array(n);
    r.set(this.rates);
    this.rates = r;
    const widen = (a: Int32Array<ArrayBuffer>): Int32Array<ArrayBuffer> => {
      const b = new Int32Array(n);
      b.set(a);
      return b;
    };
    this.keys = widen(this.keys);
    this.nameOff = widen(this.nameOff);
    this.nameLen = widen(this.nameLen);
    this.nameHash = widen(this.nameHash);
    this.entries = widen(this.entries);
  }

  /** A string, number, true, false or null at p (an ignored member's value); the position after it, or -1. */
  private skipScalar(buf: Buffer, p: number, end: number): number {
    const v = buf[p];
    if (v === QUOTE) {
      const e = this.stringEnd(buf, p + 1, end);
      return e < 0 ? -1 : e + 1;
    }
    if (v === MINUS || (v! >= DIGIT_0 && v! <= DIGIT_9)) return this.number(buf, p, end) ? this.at : -1;
    for (const word of LITERALS) {
      if (p + word.length <= end && word.every((b, i) => buf[p + i] === b)) return p + word.length;
    }
    return -1;
  }

  private isNull(buf: Buffer, p: number, end: number): boolean {
    return p + 4 <= end && buf[p] === 0x6e && buf[p + 1] === 0x75 && buf[p + 2] === 0x6c && buf[p + 3] === 0x6c;
  }

  /** End (the closing quote) of a string whose contents start at s: plain printable ASCII only, else -1. */
  private stringEnd(buf: Buffer, s: number, end: number): number {
    for (let p = s; p < end; p++) {
      const b = buf[p]!;
      if (b === QUOTE) return p;
      if (b < SPACE || b >= DEL || b === BACKSLASH) return -1;
    }
    return -1;
  }

  /**
   * A JSON number at p (`-? (0 | [1-9][0-9]*) (. [0-9]+)? ([eE] [+-]? [0-9]+)?`)
   * into num[0], finite; sets `at` to its end. JSON's grammar is a subset of
   * decimalInto's, so the value is exactly what JSON.parse gives.
   */
  private number(buf: Buffer, p: number, end: number): boolean {
    const s = p;
    const neg = p < end && buf[p] === MINUS;
    if (neg) p++;
    if (p >= end) return false;
    let b = buf[p]!;
    let mant = 0;
    if (b === DIGIT_0) {
      p++;
    } else if (b >= DIGIT_1 && b <= DIGIT_9) {
      mant = b - DIGIT_0;
      p++;
      while (p < end && (b = buf[p]!) >= DIGIT_0 && b <= DIGIT_9) {
        mant = mant * 10 + (b - DIGIT_0);
        p++;
      }
    } else {
      return false;
    }
    // An integer of at most 15 digits is exact as built: the common case (counts, unix seconds).
    if (p - s <= (neg ? 16 : 15) && (p >= end || (buf[p] !== DOT && buf[p] !== LOWER_E && buf[p] !== UPPER_E))) {
      this.num[0] = neg ? -mant : mant;
      this.at = p;
      return true;
    }
    if (p < end && buf[p] === DOT) {
      p++;
      const f = p;
      while (p < end && (b = buf[p]!) >= DIGIT_0 && b <= DIGIT_9) p++;
      if (p === f) return false;
    }
    if (p < end && (buf[p] === LOWER_E || buf[p] === UPPER_E)) {
      p++;
      if (p < end && (buf[p] === PLUS || buf[p] === MINUS)) p++;
      const x = p;
      while (p < end && (b = buf[p]!) >= DIGIT_0 && b <= DIGIT_9) p++;
      if (p === x) return false;
    }
    if (!decimalInto(buf, s, p, this.num, 0)) return false; // 1e999: not finite
    this.at = p;
    return true;
  }

  /**
   * The item's final key (prefix + sanitized name) for name bytes buf[s, e)
   * (nameHash: their FNV-1a hash from the seed), from the intern table or built once; false when the general path would
   * reject the name (empty after sanitizing, too long, unsafe unsanitized).
   */
  private resolveName(buf: Buffer, s: number, e: number, nameHash: number): boolean {
    const hash = finishHash(nameHash, this.seed);
    const intern = this.intern;
    const entry = intern.find(buf, s, e, 0, 0, hash);
    if (entry >= 0) {
      this.itemName = intern.nameOf(entry);
      this.itemKey = intern.keyBase + entry;
      return true;
    }
    if (!this.sanitize) {
      for (let i = s; i < e; i++) if (buf[i] === SPACE) return false;
    }
    const key = this.key;
    key.reset();
    key.appendName(buf, s, e);
    if (key.length === 0 || key.overflow) return false;
    const name = this.prefix + key.toString();
    const added = intern.add(buf, s, e, 0, 0, hash, name);
    this.itemName = name;
    this.itemKey = added >= 0 ? intern.keyBase + added : -1;
    return true;
  }
}

const LITERALS: ReadonlyArray<readonly number[]> = ['true', 'false', 'null'].map((w) => [...Buffer.from(w, 'latin1')]);
