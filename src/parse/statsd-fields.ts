/**
 * The pieces of a statsd / DogStatsD line that the line parser
 * (statsd-line.ts) reads byte by byte: byte constants, type codes, field
 * ends, DogStatsD origin fields, events and service checks, and the key
 * built from the name and tags. Pure functions over a Buffer region (and the
 * parser's KeyBuilder); nothing here allocates or throws.
 */
import type { KeyBuilder } from './sanitize.js';
import { LINE_BAD_TAGS, LINE_EMPTY_NAME, LINE_NAME_TOO_LONG, LINE_OK } from './line-status.js';

const COLON = 0x3a;
const PIPE = 0x7c;
const COMMA = 0x2c;
const DIGIT_0 = 0x30;
const DIGIT_9 = 0x39;
const LOWER_A = 0x61;
const LOWER_C = 0x63;
const LOWER_D = 0x64;
const LOWER_E = 0x65;
const LOWER_G = 0x67;
const LOWER_H = 0x68;
const LOWER_M = 0x6d;
const LOWER_R = 0x72;
const LOWER_S = 0x73;
const LEFT_BRACE = 0x7b;
const RIGHT_BRACE = 0x7d;

/**
 * Is buf[s, e) a DogStatsD event, `_e{<title length>,<text length>}:...`,
 * or service check, `_sc|<name>|<status>...`? (hot-shots sends both.)
 */
export function isEventOrCheck(buf: Buffer, s: number, e: number): boolean {
  if (e - s >= 4 && buf[s + 1] === LOWER_S && buf[s + 2] === LOWER_C && buf[s + 3] === PIPE) return true;
  if (e - s < 7 || buf[s + 1] !== LOWER_E || buf[s + 2] !== LEFT_BRACE) return false;
  let p = s + 3;
  let digits = 0;
  let commas = 0;
  for (; p < e; p++) {
    const b = buf[p]!;
    if (b >= DIGIT_0 && b <= DIGIT_9) digits++;
    else if (b === COMMA && digits > 0 && commas === 0) {
      commas = 1;
      digits = 0;
    } else break;
  }
  return commas === 1 && digits > 0 && p + 1 < e && buf[p] === RIGHT_BRACE && buf[p + 1] === COLON;
}

export const T_COUNTER = 1;
export const T_GAUGE = 2;
export const T_TIMER = 3; // ms: must be >= 0
const T_HISTOGRAM = 4; // h, d: timers that may be negative
export const T_SET = 5;

/** Type code of buf[s, e), or 0. */
export function typeCode(buf: Buffer, s: number, e: number): number {
  const len = e - s;
  const a = buf[s];
  if (len === 1) {
    if (a === LOWER_C) return T_COUNTER;
    if (a === LOWER_G) return T_GAUGE;
    if (a === LOWER_S) return T_SET;
    if (a === LOWER_H || a === LOWER_D) return T_HISTOGRAM;
  } else if (len === 2 && a === LOWER_M && buf[s + 1] === LOWER_S) {
    return T_TIMER;
  }
  return 0;
}

/** End of a field that may be followed by ':' (next value) or '|'. */
export function shortFieldEnd(buf: Buffer, p: number, end: number): number {
  while (p < end) {
    const b = buf[p];
    if (b === PIPE || b === COLON) break;
    p++;
  }
  return p;
}

/** End of a field that runs to the next '|' (tags, DogStatsD `c:`/`e:`/`card:`). */
export function longFieldEnd(buf: Buffer, p: number, end: number): number {
  while (p < end && buf[p] !== PIPE) p++;
  return p;
}

/** Is buf[p, end) a DogStatsD `c:`, `e:` or `card:` field? */
export function isOriginField(buf: Buffer, p: number, end: number): boolean {
  const a = buf[p];
  if ((a === LOWER_C || a === LOWER_E) && p + 1 < end && buf[p + 1] === COLON) return true;
  return (
    a === LOWER_C &&
    p + 4 < end &&
    buf[p + 1] === LOWER_A &&
    buf[p + 2] === LOWER_R &&
    buf[p + 3] === LOWER_D &&
    buf[p + 4] === COLON
  );
}

/** Is buf[s, e) one or more ASCII digits (a DogStatsD `T<ts>` field's value)? */
export function isDigits(buf: Buffer, s: number, e: number): boolean {
  if (e === s) return false;
  for (let i = s; i < e; i++) {
    const d = buf[i]!;
    if (d < DIGIT_0 || d > DIGIT_9) return false;
  }
  return true;
}

/**
 * Build into key the key of a line not in the intern table: the name
 * buf[start, nameEnd), then the tags buf[tagStart, tagEnd) split on ','
 * (tagStart < 0: none), sanitized; LINE_OK or why not.
 */
export function buildKey(key: KeyBuilder, buf: Buffer, start: number, nameEnd: number, tagStart: number, tagEnd: number): number {
  key.reset();
  key.appendName(buf, start, nameEnd);
  if (key.length === 0 && !key.overflow) return LINE_EMPTY_NAME;
  let t = tagStart;
  if (t >= 0 && t < tagEnd) {
    while (true) {
      let c = t;
      while (c < tagEnd && buf[c] !== COMMA) c++;
      if (c === t) return LINE_BAD_TAGS;
      key.appendTag(buf, t, c);
      if (c === tagEnd) break;
      t = c + 1;
      if (t === tagEnd) return LINE_BAD_TAGS;
    }
  }
  return key.overflow ? LINE_NAME_TOO_LONG : LINE_OK;
}
