/**
 * One item of a ZeroMQ status message: `{name, value, time}` with optional
 * `type` (a statsd type, default gauge), `rate` and `tags`, as a JSON value
 * in, a validated StatusItem or a reason out. Nothing here throws.
 *
 * - name: a non-empty string. Tags are appended with statsd's rules
 *   (`name;k=v;flag`: each tag's first ';' becomes '_' and its first ':'
 *   '='), then the whole key is sanitized like a statsd key when
 *   keyNameSanitize is on. Without sanitizing, whitespace and control
 *   characters are rejected (they would break a Graphite line).
 * - value: a finite JSON number. A gauge's value is absolute: JSON has no
 *   `+`/`-` delta form. A set's member may be a string or a number.
 *   An `ms` value below zero is rejected, as in a statsd line.
 * - time: unix seconds (fractions allowed); required in passthrough mode,
 *   checked but not used when aggregating (aggregation is per flush period).
 * - rate: 0 < rate <= 1 and 1 / rate finite (not 1e-320), default 1.
 * - tags: an object `{k: v}` (v a string or number; becomes `k:v`) or an
 *   array of `"k:v"` / `"flag"` strings.
 * Other members of the object are ignored.
 */
import type { SampleSink } from './sample-sink.js';
import { sanitizeKey } from './sanitize.js';

export type ItemType = 'c' | 'g' | 'ms' | 'h' | 'd' | 's';

export const ITEM_TYPES: ReadonlyArray<ItemType> = ['c', 'g', 'ms', 'h', 'd', 's'];

/** A validated item, its name final (tags appended, sanitized). */
export interface StatusItem {
  readonly name: string;
  readonly type: ItemType;
  /** The numeric value; NaN for a set member given as a string. */
  readonly value: number;
  /** The member of a set (type `s`), '' otherwise. */
  readonly member: string;
  readonly rate: number;
  /** Unix seconds as sent, or null when absent. */
  readonly time: number | null;
}

export interface ItemOptions {
  readonly keyNameSanitize: boolean;
  /** Longest accepted name in bytes, tags included. */
  readonly maxNameLength: number;
  /** passthrough: `time` is required and every value must be a number. */
  readonly passthrough: boolean;
}

/** Largest accepted `time`: beyond it the publisher is sending milliseconds (1e11 s is the year 5138). */
const MAX_TIME = 1e11;

const UNSAFE_NAME = /[\s\x00-\x1f\x7f]/; // eslint-disable-line no-control-regex -- control characters are what it finds

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function isFiniteNumber(v: unknown): v is number {
  return typeof v === 'number' && Number.isFinite(v);
}

/** The tags as `k:v` / `flag` strings, or null when malformed. */
function tagList(tags: unknown): string[] | null {
  if (Array.isArray(tags)) {
    const out: string[] = [];
    for (const t of tags) {
      if (typeof t !== 'string' || t === '') return null;
      out.push(t);
    }
    return out;
  }
  if (isRecord(tags)) {
    const out: string[] = [];
    for (const [k, v] of Object.entries(tags)) {
      if (k === '' || (typeof v !== 'string' && !isFiniteNumber(v))) return null;
      out.push(`${k}:${v}`);
    }
    return out;
  }
  return null;
}

/** `name;tag1;tag2` with statsd's per-tag replacements, sanitized when asked; a reason string when bad. */
export function itemKey(name: string, tags: readonly string[], opts: ItemOptions): string | { reason: string } {
  let key = name;
  // statsd: tag.replace(';', '_').replace(':', '=') -- the first occurrence of each.
  for (const t of tags) key += ';' + t.replace(';', '_').replace(':', '=');
  if (opts.keyNameSanitize) key = sanitizeKey(key);
  else if (UNSAFE_NAME.test(key)) return { reason: 'name contains whitespace or control characters' };
  if (key === '') return { reason: 'empty name' };
  if (Buffer.byteLength(key, 'utf8') > opts.maxNameLength) return { reason: `name longer than ${opts.maxNameLength} bytes` };
  return key;
}

/** Validates one item; returns it, or the reason it is rejected. */
export function readItem(raw: unknown, opts: ItemOptions): StatusItem | string {
  if (!isRecord(raw)) return 'not an object';
  const name = raw['name'];
  if (name === undefined || name === null) return 'missing name';
  if (typeof name !== 'string') return 'name is not a string';
  if (name === '') return 'empty name';

  const typeRaw = raw['type'];
  let type: ItemType = 'g';
  if (typeRaw !== undefined && typeRaw !== null) {
    const found = ITEM_TYPES.find((t) => t === typeRaw);
    if (found === undefined) return 'unknown type (expected one of c, g, ms, h, d, s)';
    type = found;
  }

  const v = raw['value'];
  let value = NaN;
  let member = '';
  if (v === undefined || v === null) return 'missing value';
  if (type === 's' && !opts.passthrough) {
    if (typeof v === 'string') member = v === '' ? '0' : v; // statsd: an empty set member is '0'
    else if (isFiniteNumber(v)) member = String(v);
    else return 'set member is not a string or a finite number';
  } else {
    if (!isFiniteNumber(v)) return 'value is not a finite number';
    if (type === 'ms' && v < 0 && !opts.passthrough) return 'negative timer value';
    value = v;
  }

  const rateRaw = raw['rate'];
  let rate = 1;
  if (rateRaw !== undefined && rateRaw !== null) {
    if (!isFiniteNumber(rateRaw) || !(rateRaw > 0 && rateRaw <= 1)) return 'rate is not a number in (0, 1]';
    if (!(1 / rateRaw < Infinity)) return 'rate has no finite inverse';
    rate = rateRaw;
  }

  const timeRaw = raw['time'];
  let time: number | null = null;
  if (timeRaw !== undefined && timeRaw !== null) {
    if (!isFiniteNumber(timeRaw) || timeRaw <= 0 || timeRaw >= MAX_TIME) return 'time is not unix seconds';
    time = timeRaw;
  } else if (opts.passthrough) {
    return 'missing time (passthrough needs each item\'s own timestamp)';
  }

  let tags: string[] = [];
  const tagsRaw = raw['tags'];
  if (tagsRaw !== undefined && tagsRaw !== null) {
    const list = tagList(tagsRaw);
    if (list === null) return 'tags are not an object of strings and numbers or an array of non-empty strings';
    tags = list;
  }
  const key = itemKey(name, tags, opts);
  if (typeof key !== 'string') return key.reason;
  return { name: key, type, value, member, rate, time };
}

/** Folds an item into the statsd aggregation, under `prefix + name`. */
export function applyItem(item: StatusItem, prefix: string, sink: SampleSink): void {
  const name = prefix + item.name;
  switch (item.type) {
    case 'c':
      sink.counter(name, item.value, item.rate);
      break;
    case 'g':
      sink.gauge(name, item.value, false);
      break;
    case 's':
      sink.set(name, item.member);
      break;
    default:
      sink.timer(name, item.value, item.rate);
  }
}

/** The Graphite plaintext line of a passthrough item: `<prefix><name> <value> <whole seconds>`. */
export function passthroughLine(item: StatusItem, prefix: string): string {
  return `${prefix}${item.name} ${String(item.value)} ${Math.floor(item.time ?? 0)}`;
}

/** Deepest level excerpt() opens; below it an array is `[…]` and an object `{…}`. */
const EXCERPT_DEPTH = 4;

/**
 * A parsed JSON value as short JSON-like text for a log line: at most about
 * max characters, nesting shown EXCERPT_DEPTH levels deep. Never
 * JSON.stringify on the value itself, which a deeply nested item (a
 * publisher's `[[[[…]]]]`) would take past the call stack.
 */
export function excerpt(value: unknown, max = 200): string {
  const out: string[] = [];
  let room = max;
  const put = (s: string): boolean => {
    if (room <= 0) return false;
    const part = s.length > room ? `${s.slice(0, room)}…` : s;
    out.push(part);
    room -= s.length;
    return room > 0;
  };
  const walk = (v: unknown, depth: number): boolean => {
    if (typeof v === 'string') return put(JSON.stringify(v.length > max ? v.slice(0, max) : v));
    if (typeof v !== 'object' || v === null) return put(String(v));
    const arr = Array.isArray(v);
    if (depth >= EXCERPT_DEPTH) return put(arr ? '[…]' : '{…}');
    if (!put(arr ? '[' : '{')) return false;
    let first = true;
    if (arr) {
      for (const x of v as unknown[]) {
        if ((!first && !put(',')) || !walk(x, depth + 1)) return false;
        first = false;
      }
      return put(']');
    }
    const rec = v as Record<string, unknown>;
    for (const k in rec) {
      if (!Object.hasOwn(rec, k)) continue;
      if (!first && !put(',')) return false;
      first = false;
      if (!put(`${JSON.stringify(k.length > max ? k.slice(0, max) : k)}:`) || !walk(rec[k], depth + 1)) return false;
    }
    return put('}');
  };
  walk(value, 0);
  return out.join('');
}
