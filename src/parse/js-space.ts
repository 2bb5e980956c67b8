/**
 * JavaScript whitespace over UTF-8 bytes: the characters `\s` matches, which
 * are also the ones `Number()` trims (StrWhiteSpaceChar): \t \n \v \f \r,
 * space, U+00A0, U+1680, U+2000..U+200A, U+2028, U+2029, U+202F, U+205F,
 * U+3000 and U+FEFF. statsd decodes a packet as UTF-8 and then applies both,
 * so tallyd matches these byte sequences where statsd would see the
 * characters. Their lead bytes (0xC2, 0xE1, 0xE2, 0xE3, 0xEF) are never
 * continuation bytes, so a match here is the character a UTF-8 decoder reads.
 */

const SPACE = 0x20;
const TAB = 0x09;
const CR = 0x0d;

/** Length in bytes of the JS whitespace character at buf[p] (before end), or 0. */
export function spaceAt(buf: Buffer, p: number, end: number): number {
  const b = buf[p]!;
  if (b === SPACE || (b >= TAB && b <= CR)) return 1;
  if (b < 0xc2) return 0;
  if (b === 0xc2) return p + 1 < end && buf[p + 1] === 0xa0 ? 2 : 0;
  if (p + 2 >= end) return 0;
  const c = buf[p + 1]!;
  const d = buf[p + 2]!;
  if (b === 0xe2) {
    if (c === 0x80) return (d >= 0x80 && d <= 0x8a) || d === 0xa8 || d === 0xa9 || d === 0xaf ? 3 : 0;
    return c === 0x81 && d === 0x9f ? 3 : 0;
  }
  if (b === 0xe1) return c === 0x9a && d === 0x80 ? 3 : 0;
  if (b === 0xe3) return c === 0x80 && d === 0x80 ? 3 : 0;
  if (b === 0xef) return c === 0xbb && d === 0xbf ? 3 : 0;
  return 0;
}

/** Length in bytes of the JS whitespace character that ends at buf[end - 1] (not before start), or 0. */
export function spaceBefore(buf: Buffer, start: number, end: number): number {
  if (end <= start) return 0;
  const b = buf[end - 1]!;
  if (b < 0x80) return b === SPACE || (b >= TAB && b <= CR) ? 1 : 0;
  if (end - 2 >= start && spaceAt(buf, end - 2, end) === 2) return 2;
  if (end - 3 >= start && spaceAt(buf, end - 3, end) === 3) return 3;
  return 0;
}
