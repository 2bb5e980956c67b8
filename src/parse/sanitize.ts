/**
 * statsd key sanitizing, as a string function (for names that arrive as
 * strings, e.g. ZeroMQ JSON) and as a byte-level key builder for the line
 * parser's hot path.
 *
 * statsd 0.9 (`sanitizeKeyName`):
 *   key.replace(/\s+/g, '_').replace(/\//g, '-').replace(/[^a-zA-Z_\-0-9\.;=]/g, '')
 *
 * The byte-level builder does the same: statsd decodes UTF-8 first, so the
 * UTF-8 sequences of JavaScript's Unicode whitespace (U+00A0, U+2000..,
 * U+3000, U+FEFF, ...; js-space.ts) join a whitespace run that becomes one
 * '_'; every other byte >= 0x80 is dropped, as statsd drops the characters.
 */
import { spaceAt } from './js-space.js';

const SANITIZE_WS = /\s+/g;
const SANITIZE_SLASH = /\//g;
const SANITIZE_DROP = /[^a-zA-Z_\-0-9.;=]/g;

/** statsd's sanitizeKeyName, exactly. */
export function sanitizeKey(s: string): string {
  return s.replace(SANITIZE_WS, '_').replace(SANITIZE_SLASH, '-').replace(SANITIZE_DROP, '');
}

const UNDERSCORE = 0x5f;
const DASH = 0x2d;
const SLASH = 0x2f;
const SEMICOLON = 0x3b;
const COLON = 0x3a;
const EQUALS = 0x3d;

const DROP = 0;
const KEEP = 1;
const SPACE = 2;
const TO_DASH = 3;

/** What sanitizing does with each byte value. */
const BYTE_CLASS: Uint8Array = (() => {
  const t = new Uint8Array(256); // DROP
  for (let b = 0x30; b <= 0x39; b++) t[b] = KEEP;
  for (let b = 0x41; b <= 0x5a; b++) t[b] = KEEP;
  for (let b = 0x61; b <= 0x7a; b++) t[b] = KEEP;
  for (const b of [UNDERSCORE, DASH, 0x2e, SEMICOLON, EQUALS]) t[b] = KEEP;
  // JS `\s` on ASCII: \t \n \v \f \r and space.
  for (const b of [0x09, 0x0a, 0x0b, 0x0c, 0x0d, 0x20]) t[b] = SPACE;
  t[SLASH] = TO_DASH;
  return t;
})();

/**
 * Builds `name;tag1;tag2` into a fixed scratch buffer, sanitizing on the
 * way when asked. Tag bytes get statsd's `tag.replace(';', '_').replace(':', '=')`
 * (first occurrence of each) before sanitizing. Reused across lines.
 */
export class KeyBuilder {
  /** Bytes written so far. */
  length = 0;
  /** Set when the key would be longer than maxLength bytes. */
  overflow = false;
  private readonly out: Buffer;
  private prevSpace = false;

  constructor(
    private readonly sanitize: boolean,
    private readonly maxLength: number,
  ) {
    this.out = Buffer.allocUnsafe(maxLength);
  }

  reset(): void {
    this.length = 0;
    this.overflow = false;
    this.prevSpace = false;
  }

  /** Append the raw name bytes buf[start, end). */
  appendName(buf: Buffer, start: number, end: number): void {
    for (let i = start; i < end; i++) {
      const b = buf[i]!;
      if (b >= 0xc2 && this.sanitize) i += this.unicodeSpace(buf, i, end);
      else this.put(b);
    }
  }

  /** Append ';' and one tag buf[start, end) with statsd's first-';' and first-':' replacement. */
  appendTag(buf: Buffer, start: number, end: number): void {
    this.put(SEMICOLON);
    let semi = true;
    let colon = true;
    for (let i = start; i < end; i++) {
      let b = buf[i]!;
      if (b >= 0xc2 && this.sanitize) {
        i += this.unicodeSpace(buf, i, end);
        continue;
      }
      if (b === SEMICOLON && semi) {
        b = UNDERSCORE;
        semi = false;
      } else if (b === COLON && colon) {
        b = EQUALS;
        colon = false;
      }
      this.put(b);
    }
  }

  /** The key as a string: latin1 (pure ASCII) when sanitized, else UTF-8. */
  toString(): string {
    return this.out.toString(this.sanitize ? 'latin1' : 'utf8', 0, this.length);
  }

  /** A byte >= 0xC2 at buf[i]: puts '_' for a Unicode whitespace character (its run), else drops the byte; returns the extra bytes used. */
  private unicodeSpace(buf: Buffer, i: number, end: number): number {
    const n = spaceAt(buf, i, end);
    if (n === 0) {
      this.prevSpace = false; // a dropped character ends a run, as in statsd (\s+ first, then the drop)
      return 0;
    }
    this.put(0x20);
    return n - 1;
  }

  private put(b: number): void {
    if (this.sanitize) {
      const cls = BYTE_CLASS[b];
      if (cls === SPACE) {
        if (this.prevSpace) return;
        this.prevSpace = true;
        b = UNDERSCORE;
      } else {
        this.prevSpace = false;
        if (cls === DROP) return;
        if (cls === TO_DASH) b = DASH;
      }
    }
    if (this.length >= this.maxLength) {
      this.overflow = true;
      return;
    }
    this.out[this.length++] = b;
  }
}
