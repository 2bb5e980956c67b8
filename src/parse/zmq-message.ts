/**
 * Decodes one ZeroMQ status frame (the last frame of a message; a leading
 * topic frame is the caller's to drop). The format is detected, not
 * configured:
 *
 *   1. zlib or plain: a frame that opens with a valid zlib header (CM 8,
 *      window <= 32K, no preset dictionary, (CMF*256+FLG) % 31 == 0) and
 *      inflates is zlib; anything else must be UTF-8 text without control
 *      characters other than tab, CR and LF.
 *   2. JSON or statsd: text whose first non-blank character is '[' is a JSON
 *      array of items, '{' a single item; anything else is statsd lines,
 *      returned as bytes for the statsd line parser.
 *
 * The frame as received and its inflated text are both bounded by
 * maxMessageSize (inflating stops there, so a zlib bomb costs nothing; libzmq
 * already refuses a longer frame as received, ingest/zmq.ts, so that check is
 * a second line). JSON.parse does not recurse on this Node (100,000 levels
 * parse), and anything it throws is FRAME_BAD_JSON. Bad input is a status
 * code, never an exception.
 */
import { isUtf8 } from 'node:buffer';
import { inflateSync } from 'node:zlib';
import { nativeAddon, type TallydAddon } from '../native/addon.js';
import { type ItemOptions, readItem, type StatusItem } from './zmq-item.js';
import type { ZmqFastReader } from './zmq-fast.js';

const addon = nativeAddon();
/** The native addon's inflater (one z_stream reused; zmq_inflate.c), when it was built. */
const nativeInflate: TallydAddon['zmqInflate'] | null = typeof addon === 'string' ? null : addon.zmqInflate;
/** Where the native inflater writes: grown (up to maxMessageSize) as messages need, reused for every message. */
let scratch = Buffer.allocUnsafe(64 * 1024);

/**
 * frame inflated natively into the scratch buffer (a view of it, valid until the next call), or null when
 * node:zlib must decide: no addon, a bad or unusual stream, or more than max bytes.
 */
function inflateToScratch(inflate: TallydAddon['zmqInflate'], frame: Buffer, max: number): Buffer | null {
  for (;;) {
    const n = inflate(frame, scratch.length > max ? scratch.subarray(0, max) : scratch);
    if (n >= 0) return scratch.subarray(0, n);
    if (n !== -1 || scratch.length >= max) return null;
    scratch = Buffer.allocUnsafe(Math.min(max, scratch.length * 4));
  }
}

export const FRAME_OK = 0;
/** Zero bytes, or only whitespace. */
export const FRAME_EMPTY = 1;
/** Longer than maxMessageSize as received or once inflated. */
export const FRAME_OVERSIZED = 2;
/** A zlib header whose stream does not inflate. */
export const FRAME_BAD_ZLIB = 3;
/** Not UTF-8 text (binary garbage). */
export const FRAME_NOT_TEXT = 4;
/** Starts like JSON ('[' or '{') but does not parse. */
export const FRAME_BAD_JSON = 5;

const FRAME_TEXT = ['ok', 'empty message', 'message too large', 'bad zlib stream', 'not zlib and not UTF-8 text', 'bad JSON'];

export function frameStatusText(code: number): string {
  return FRAME_TEXT[code] ?? `unknown status ${code}`;
}

export interface FrameOptions extends ItemOptions {
  /** Largest frame, and largest inflated text, in bytes. */
  readonly maxMessageSize: number;
}

export interface BadItem {
  readonly reason: string;
  /** The item as parsed, for logs (through excerpt(): it may be nested arbitrarily deep). */
  readonly item: unknown;
  /** Its place in the message's array (0 for a single object). */
  readonly index: number;
}

export interface DecodedFrame {
  readonly status: number;
  /** The frame was zlib-deflated. */
  readonly compressed: boolean;
  /** What the text held, when status is FRAME_OK. */
  readonly format: 'json' | 'statsd' | null;
  /**
   * The text (inflated if it was compressed): statsd lines for the line parser. When the fast reader took a
   * message the native inflater inflated (fastItems > 0), a view of a scratch buffer that the next decodeFrame
   * overwrites.
   */
  readonly text: Buffer;
  readonly items: StatusItem[];
  readonly badItems: BadItem[];
  /** Items the fast reader holds instead of `items` (its emit() hands them on); 0 when it was not used. */
  readonly fastItems: number;
  /** More about a bad status (the JSON or zlib error), for logs. */
  readonly detail: string;
}

const TAB = 0x09;
const LF = 0x0a;
const CR = 0x0d;
const SPACE = 0x20;
const DEL = 0x7f;
const OPEN_BRACKET = 0x5b;
const OPEN_BRACE = 0x7b;

/** Does buf open with a zlib (RFC 1950) header that inflateSync can take? */
export function looksLikeZlib(buf: Buffer): boolean {
  if (buf.length < 2) return false;
  const cmf = buf[0]!;
  const flg = buf[1]!;
  return (cmf & 0x0f) === 8 && cmf >> 4 <= 7 && (flg & 0x20) === 0 && (cmf * 256 + flg) % 31 === 0;
}

/** UTF-8 text without control characters other than tab, LF and CR. */
export function isText(buf: Buffer): boolean {
  for (let i = 0; i < buf.length; i++) {
    const b = buf[i]!;
    if ((b < SPACE && b !== TAB && b !== LF && b !== CR) || b === DEL) return false;
  }
  return isUtf8(buf);
}

/** Index of the first byte that is not whitespace (nor a UTF-8 byte-order mark). */
function firstSignificant(buf: Buffer): number {
  let p = 0;
  if (buf.length >= 3 && buf[0] === 0xef && buf[1] === 0xbb && buf[2] === 0xbf) p = 3;
  while (p < buf.length) {
    const b = buf[p];
    if (b !== SPACE && b !== TAB && b !== LF && b !== CR) break;
    p++;
  }
  return p;
}

/** Did the fast reader take text? It only takes printable ASCII JSON, which isText would pass. */
function readFast(fast: ZmqFastReader, text: Buffer): boolean {
  const at = firstSignificant(text);
  const b = text[at];
  return (b === OPEN_BRACKET || b === OPEN_BRACE) && fast.read(text, at, text.length) >= 0;
}

function fastResult(compressed: boolean, text: Buffer, n: number): DecodedFrame {
  return { status: FRAME_OK, compressed, format: 'json', text, items: [], badItems: [], fastItems: n, detail: '' };
}

function result(status: number, compressed: boolean, text: Buffer, detail = ''): DecodedFrame {
  return { status, compressed, format: null, text, items: [], badItems: [], fastItems: 0, detail };
}

/** Inflates, or says why it could not. */
function inflate(frame: Buffer, max: number): { status: number; text: Buffer; detail: string } {
  try {
    return { status: FRAME_OK, text: inflateSync(frame, { maxOutputLength: max }), detail: '' };
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    if (e.code === 'ERR_BUFFER_TOO_LARGE' || e instanceof RangeError) {
      return { status: FRAME_OVERSIZED, text: frame, detail: `inflates to more than ${max} bytes` };
    }
    return { status: FRAME_BAD_ZLIB, text: frame, detail: e.message };
  }
}

/**
 * Decodes a frame. With `fast` (aggregate mode), a JSON message of plain
 * items is read by it straight from the bytes (zmq-fast.ts) and the result
 * says how many it holds (fastItems); anything it does not take is decoded
 * here as without it, with the same outcome.
 */
export function decodeFrame(frame: Buffer, opts: FrameOptions, fast?: ZmqFastReader): DecodedFrame {
  if (frame.length > opts.maxMessageSize) return result(FRAME_OVERSIZED, false, frame, `${frame.length} bytes`);
  let text = frame;
  let compressed = false;
  const tryFast = fast !== undefined && !opts.passthrough;
  if (looksLikeZlib(frame)) {
    const view = nativeInflate !== null ? inflateToScratch(nativeInflate, frame, opts.maxMessageSize) : null;
    if (view !== null) {
      compressed = true;
      // The hot path: the fast reader reads the scratch buffer in place; the result's text is that view.
      if (tryFast && readFast(fast, view)) return fastResult(true, view, fast.count);
      text = Buffer.from(view); // a copy: a decoded frame outlives the scratch buffer
    } else {
      const inflated = inflate(frame, opts.maxMessageSize);
      if (inflated.status === FRAME_OK) {
        text = inflated.text;
        compressed = true;
      } else if (inflated.status === FRAME_OVERSIZED || !isText(frame)) {
        return result(inflated.status, true, frame, inflated.detail);
      }
      // else: text that happens to open like a zlib header ("x^..."): read it as text.
      if (tryFast && readFast(fast, text)) return fastResult(compressed, text, fast.count);
    }
  } else if (tryFast && readFast(fast, text)) {
    return fastResult(false, text, fast.count);
  }
  if (!isText(text)) return result(FRAME_NOT_TEXT, compressed, text);
  const start = firstSignificant(text);
  if (start === text.length) return result(FRAME_EMPTY, compressed, text);

  const first = text[start];
  if (first !== OPEN_BRACKET && first !== OPEN_BRACE) {
    return { status: FRAME_OK, compressed, format: 'statsd', text, items: [], badItems: [], fastItems: 0, detail: '' };
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(text.toString('utf8', start));
  } catch (err) {
    return result(FRAME_BAD_JSON, compressed, text, (err as Error).message);
  }
  const items: StatusItem[] = [];
  const badItems: BadItem[] = [];
  const list: unknown[] = Array.isArray(parsed) ? parsed : [parsed];
  for (let i = 0; i < list.length; i++) {
    const raw = list[i];
    const item = readItem(raw, opts);
    if (typeof item === 'string') badItems.push({ reason: item, item: raw, index: i });
    else items.push(item);
  }
  return { status: FRAME_OK, compressed, format: 'json', text, items, badItems, fastItems: 0, detail: '' };
}
