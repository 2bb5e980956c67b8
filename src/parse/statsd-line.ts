/**
 * The statsd / DogStatsD line parser: Buffer in, SampleSink calls out.
 *
 *   name:value|type[|@rate][|#tags][|T<ts>][|c:<id>][|e:<x>][|card:<x>][:value|type[fields]]...
 *
 * Types c, g, ms, h, d, s. DogStatsD events (`_e{..}:..`) and service checks
 * (`_sc|..`) are recognized and counted in eventsIgnored, not aggregated. Fields after the type come in any order. Tags
 * apply to the whole line and become `name;k=v;flag` like statsd; the key is
 * then sanitized like statsd's sanitizeKeyName. A line is all-or-nothing: it
 * is validated completely (into fixed scratch arrays) before the sink sees any
 * of its values. A bad value of a multi-value line is skipped and counted
 * (statsd keeps the others); a bad name or tags drop the whole line. Bad
 * input returns a status code; nothing here throws.
 *
 * Allocation: the key string of a well-formed line is built once per distinct
 * raw key region (name bytes + tag bytes) and then found in the intern table
 * (key-intern.ts) by hashing those bytes while scanning and comparing them; values
 * and rates are parsed into typed scratch arrays (number.ts decimalInto). So a
 * well-formed line whose key was seen allocates nothing here, except a set's
 * member string and a value of more than 15 significant digits (number.ts).
 * The sink also gets the key's intern id, so a Batch can skip hashing the name.
 * The byte-level readers of types, fields, events and the key are in
 * statsd-fields.ts.
 *
 * Stricter than statsd 0.9 on purpose (statsd's behaviour in brackets):
 * - values must be decimals, with or without surrounding whitespace
 *   ('0x10', 'Infinity' and a lone ' ' accepted);
 * - unknown types are bad lines (counted as counters, as are 'h' and 'd',
 *   which tallyd treats as timers), an empty type too ('a:1|' is a counter);
 * - rate must be a decimal in (0, 1] whose inverse is finite ('@0', '@2'
 *   accepted; '@1e-1' and '@1e-320' read as 1;
 *   '@+0.5' throws inside statsd); rate must be the third field there, here
 *   any field after the type;
 * - unknown fields, two rates, two tag fields, empty tags ('#a,,b' gives
 *   'name;a;;b') are bad lines;
 * - a tags field ends at the next '|' (statsd takes everything up to the end
 *   of the line, so 'a:1|c|#t:v|@0.5' gets tag 't=v0.5' and rate 1);
 * - a set member containing ':' is a bad value (statsd splits it into values);
 * - trailing spaces, tabs and '\r' are trimmed from the line (statsd trims
 *   the type only, so its 'a:-1|ms\r' skips the negative-timer check).
 */
import type { SampleSink } from './sample-sink.js';
import { decimalInto, trimmedDecimalInto } from './number.js';
import { KeyBuilder } from './sanitize.js';
import { finishHash, hashByte, hashBytes, KeyInternTable, type InternOptions } from './key-intern.js';
import {
  LINE_OK, LINE_EMPTY, LINE_NO_VALUE, LINE_EMPTY_NAME, LINE_NAME_TOO_LONG, LINE_NO_TYPE, LINE_BAD_TYPE,
  LINE_BAD_VALUE, LINE_NEGATIVE_TIMER, LINE_BAD_RATE, LINE_BAD_TAGS, LINE_BAD_FIELD, LINE_TOO_MANY_VALUES,
} from './line-status.js';
import {
  T_COUNTER, T_GAUGE, T_TIMER, T_SET, buildKey, isDigits, isEventOrCheck, isOriginField, longFieldEnd, shortFieldEnd, typeCode,
} from './statsd-fields.js';

export * from './line-status.js';

export interface ParseOptions {
  keyNameSanitize: boolean;
  /** Longest accepted key in bytes, tags included; default 1024. */
  maxNameLength?: number;
  /** Bounds of the key intern table (key-intern.ts); defaults there. */
  intern?: InternOptions;
}

/** Most values one multi-value line may carry. */
export const MAX_VALUES = 64;
export const DEFAULT_MAX_NAME_LENGTH = 1024;

const NL = 0x0a;
const CR = 0x0d;
const TAB = 0x09;
const SPACE = 0x20;
const COLON = 0x3a;
const PIPE = 0x7c;
const AT = 0x40;
const HASH = 0x23;
const PLUS = 0x2b;
const MINUS = 0x2d;
const UPPER_T = 0x54;
const UNDERSCORE = 0x5f;

/** parsePacket's mark for a DogStatsD event or service check line (not a status readLine returns). */
const LINE_EVENT = -1;

export class StatsdLineParser {
  /** Non-empty lines seen, good or bad (statsd's metrics_received). */
  metricsReceived = 0;
  /**
   * statsd's bad_lines_seen: each bad value of a multi-value line counts (its
   * good values land, as in statsd), a line bad as a whole (its name or tags)
   * counts once.
   */
  badLines = 0;
  /** Lines with at least one value handed to the sink. */
  goodLines = 0;
  /** DogStatsD events (`_e{...}`) and service checks (`_sc|...`): recognized, not aggregated, not bad lines. */
  eventsIgnored = 0;
  /** Told about each bad line; the buffer region is only valid during the call. */
  onBadLine?: (status: number, buf: Buffer, start: number, end: number) => void;
  /** Called for every non-empty line before it is parsed (statsd's dumpMessages); unset on the hot path. */
  onLine?: (buf: Buffer, start: number, end: number) => void;

  private readonly key: KeyBuilder;
  /** Raw key bytes -> final key string, so a repeated key allocates nothing (key-intern.ts). */
  readonly intern: KeyInternTable;
  private readonly seed: number;
  private readonly sanitize: boolean;
  private readonly maxKeyBytes: number;
  // Scratch, one slot per value of the current line.
  private readonly types = new Uint8Array(MAX_VALUES);
  private readonly values = new Float64Array(MAX_VALUES);
  private readonly rates = new Float64Array(MAX_VALUES);
  private readonly deltas = new Uint8Array(MAX_VALUES);
  private readonly memberStart = new Int32Array(MAX_VALUES);
  private readonly memberEnd = new Int32Array(MAX_VALUES);
  private tagStart = 0;
  private tagEnd = 0;
  /** Bad values of the line readLine read last, and the status of its first one. */
  private lineBad = 0;
  private lineBadStatus = 0;
  // The line readLine accepted last: its value count, key string and key id.
  private lineValues = 0;
  private lineName = '';
  private lineKey = -1;

  constructor(opts: ParseOptions) {
    const max = Math.max(1, Math.floor(opts.maxNameLength ?? DEFAULT_MAX_NAME_LENGTH));
    this.key = new KeyBuilder(opts.keyNameSanitize, max);
    this.sanitize = opts.keyNameSanitize;
    this.maxKeyBytes = max;
    this.intern = new KeyInternTable(opts.intern);
    this.seed = this.intern.seed;
  }

  /** Split buf[start, end) on '\n' and parse each non-empty line. */
  parsePacket(buf: Buffer, start: number, end: number, sink: SampleSink): void {
    if (end > buf.length) end = buf.length;
    let s = start < 0 ? 0 : start;
    while (s < end) {
      let e = s;
      while (e < end && buf[e] !== NL) e++; // lines are short: cheaper than a call into buf.indexOf
      if (e > s) {
        this.metricsReceived++;
        if (this.onLine !== undefined) this.onLine(buf, s, e);
        const status = buf[s] === UNDERSCORE && isEventOrCheck(buf, s, e) ? LINE_EVENT : this.readLine(buf, s, e);
        if (status === LINE_EVENT) {
          this.eventsIgnored++;
        } else if (status === LINE_OK) {
          this.goodLines++;
          this.emit(buf, sink);
          if (this.lineBad !== 0) this.countBad(this.lineBadStatus, this.lineBad, buf, s, e);
        } else {
          this.countBad(status, this.lineBad > 1 ? this.lineBad : 1, buf, s, e);
        }
      }
      s = e + 1;
    }
  }

  /** badLines += n (statsd counts each bad value of a line); tells onBadLine once. */
  private countBad(status: number, n: number, buf: Buffer, s: number, e: number): void {
    this.badLines += n;
    if (this.onBadLine !== undefined) this.onBadLine(status, buf, s, e);
  }

  /**
   * Parse one line buf[start, end) (no '\n' inside); feeds sink the line's
   * good values. LINE_OK when at least one value was good (badValues() says
   * how many were not), else why not. Counts nothing.
   */
  parseLine(buf: Buffer, start: number, end: number, sink: SampleSink): number {
    const status = this.readLine(buf, start, end);
    if (status === LINE_OK) this.emit(buf, sink);
    return status;
  }

  /** Bad values of the line parseLine read last. */
  badValues(): number {
    return this.lineBad;
  }

  /**
   * Validate one line into the scratch fields (values, its key string and
   * key id); LINE_OK or why not. Emitting is a separate step, called from
   * the short packet loop rather than from this long function, so the
   * optimizer has the inlining budget left to inline the sink's methods
   * there: a double passed to a call that is not inlined is boxed (allocated).
   */
  private readLine(buf: Buffer, start: number, end: number): number {
    this.lineBad = 0;
    if (start < 0) start = 0;
    if (end > buf.length) end = buf.length;
    while (end > start) {
      const b = buf[end - 1];
      if (b !== CR && b !== SPACE && b !== TAB) break;
      end--;
    }
    if (end <= start) return LINE_EMPTY;

    let p = start;
    let nameHash = this.seed;
    while (p < end) {
      const b = buf[p]!;
      if (b === COLON) break;
      nameHash = hashByte(nameHash, b);
      p++;
    }
    if (p === end) return LINE_NO_VALUE;
    const nameEnd = p;
    if (nameEnd === start) return LINE_EMPTY_NAME;
    p++;

    this.tagStart = -1;
    let n = 0;
    let colonInMember = false; // a value without a type ran into ':': a set's member if a set follows
    while (true) {
      if (n === MAX_VALUES) return LINE_TOO_MANY_VALUES;
      const vs = p;
      const tagStart = this.tagStart;
      let err = 0;
      value: {
        while (p < end && buf[p] !== PIPE && buf[p] !== COLON) p++;
        const ve = p;
        if (p === end || buf[p] !== PIPE) {
          err = LINE_NO_TYPE;
          break value;
        }
        p++;
        const ts = p;
        p = shortFieldEnd(buf, p, end);
        const type = typeCode(buf, ts, p);
        if (type === 0) {
          err = LINE_BAD_TYPE;
          break value;
        }
        this.types[n] = type;
        if (type === T_SET) {
          if (colonInMember) return LINE_BAD_VALUE; // 'u:a:b|s': statsd splits the member into values
          this.memberStart[n] = vs;
          this.memberEnd[n] = ve;
        } else {
          if (vs === ve) {
            err = LINE_NO_VALUE;
            break value;
          }
          // Surrounding whitespace is statsd's Number() too, off the hot path; a sign after it is not a delta (statsd tests /^[-+]/).
          if (!decimalInto(buf, vs, ve, this.values, n) && !trimmedDecimalInto(buf, vs, ve, this.values, n)) {
            err = LINE_BAD_VALUE;
            break value;
          }
          if (type === T_TIMER && this.values[n]! < 0) {
            err = LINE_NEGATIVE_TIMER;
            break value;
          }
          const sign = buf[vs];
          this.deltas[n] = sign === PLUS || sign === MINUS ? 1 : 0;
        }
        const status = this.parseFields(buf, p, end, n);
        if (status < 0) {
          err = -status;
          break value;
        }
        p = status;
        n++;
      }
      colonInMember = err === LINE_NO_TYPE && p < end;
      if (err !== 0) {
        // statsd keeps a line's good values and counts each bad one: skip this one to its ':'.
        if (this.lineBad++ === 0) this.lineBadStatus = err;
        this.tagStart = tagStart;
        p = this.skipValue(buf, vs, end);
        if (p < 0) return LINE_BAD_TAGS;
      }
      if (p === end) break;
      p++; // ':' starts the next value
    }
    if (n === 0) return this.lineBadStatus;

    // The key region: name bytes + tag bytes. Seen before and well-formed: its string, nothing allocated.
    let tagS = this.tagStart;
    let tagE = this.tagEnd;
    if (tagS < 0) tagS = tagE = 0;
    const hash = finishHash(nameHash, hashBytes(buf, tagS, tagE, this.seed));
    const intern = this.intern;
    let entry = intern.find(buf, start, nameEnd, tagS, tagE, hash);
    let name: string;
    if (entry >= 0) {
      name = intern.nameOf(entry);
    } else {
      const status = buildKey(this.key, buf, start, nameEnd, this.tagStart, this.tagEnd);
      if (status !== LINE_OK) return status;
      name = this.key.toString();
      // Unsanitized invalid UTF-8 decodes to U+FFFD, 3 bytes for 1: the bound is on the key's UTF-8, as for ZeroMQ names.
      if (!this.sanitize && Buffer.byteLength(name) > this.maxKeyBytes) return LINE_NAME_TOO_LONG;
      entry = intern.add(buf, start, nameEnd, tagS, tagE, hash, name);
    }
    this.lineValues = n;
    this.lineName = name;
    this.lineKey = entry >= 0 ? intern.keyBase + entry : -1;
    return LINE_OK;
  }

  /** Hand the values of the line readLine just accepted to the sink. */
  private emit(buf: Buffer, sink: SampleSink): void {
    const n = this.lineValues;
    const name = this.lineName;
    const key = this.lineKey;
    for (let i = 0; i < n; i++) {
      const type = this.types[i];
      if (type === T_COUNTER) {
        sink.counter(name, this.values[i]!, this.rates[i]!, key);
      } else if (type === T_GAUGE) {
        sink.gauge(name, this.values[i]!, this.deltas[i] === 1, key);
      } else if (type === T_SET) {
        sink.set(name, this.member(buf, i));
      } else {
        sink.timer(name, this.values[i]!, this.rates[i]!, key);
      }
    }
  }

  /**
   * After a bad value that started at p: the position of the ':' that starts
   * the next value (or end), taking a tags field on the way (statsd reads the
   * tags of the whole line whatever its values are); -1 for a second tags field.
   */
  private skipValue(buf: Buffer, p: number, end: number): number {
    p = shortFieldEnd(buf, p, end); // the value
    if (p < end && buf[p] === PIPE) p = shortFieldEnd(buf, p + 1, end); // its type
    while (p < end && buf[p] === PIPE) {
      p++;
      if (p < end && buf[p] === HASH) {
        if (this.tagStart >= 0) return -1;
        this.tagStart = p + 1;
        this.tagEnd = p = longFieldEnd(buf, p + 1, end);
      } else if (p < end && isOriginField(buf, p, end)) {
        p = longFieldEnd(buf, p, end);
      } else {
        p = shortFieldEnd(buf, p, end);
      }
    }
    return p;
  }

  /** Value i of the line as a set member: its text, '0' when empty (statsd). */
  private member(buf: Buffer, i: number): string {
    const ms = this.memberStart[i]!;
    const me = this.memberEnd[i]!;
    return ms === me ? '0' : buf.toString('utf8', ms, me);
  }

  /**
   * Parse the fields after value n's type, from p (at '|', ':' or end).
   * Returns the position after them (at ':' or end), or -status.
   */
  private parseFields(buf: Buffer, p: number, end: number, n: number): number {
    const rates = this.rates;
    rates[n] = 1;
    let haveRate = false;
    while (p < end && buf[p] === PIPE) {
      p++;
      const c = buf[p];
      if (p < end && c === AT) {
        const e = shortFieldEnd(buf, p + 1, end);
        if (haveRate) return -LINE_BAD_RATE;
        if (!decimalInto(buf, p + 1, e, rates, n)) return -LINE_BAD_RATE;
        const rate = rates[n]!;
        if (!(rate > 0 && rate <= 1 && 1 / rate < Infinity)) return -LINE_BAD_RATE; // @1e-320: 1/rate is not finite
        haveRate = true;
        p = e;
      } else if (p < end && c === HASH) {
        const e = longFieldEnd(buf, p + 1, end);
        if (this.tagStart >= 0) return -LINE_BAD_TAGS;
        this.tagStart = p + 1;
        this.tagEnd = e;
        p = e;
      } else if (p < end && c === UPPER_T) {
        const e = shortFieldEnd(buf, p + 1, end);
        if (!isDigits(buf, p + 1, e)) return -LINE_BAD_FIELD;
        p = e; // DogStatsD timestamp: ignored, aggregation is per flush period
      } else if (p < end && isOriginField(buf, p, end)) {
        p = longFieldEnd(buf, p, end); // DogStatsD container / origin: ignored
      } else {
        return -LINE_BAD_FIELD;
      }
    }
    return p;
  }
}
