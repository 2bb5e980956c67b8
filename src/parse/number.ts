/**
 * Decimal number parsing over a Buffer slice, for the statsd line parser.
 *
 * Accepted grammar (ASCII): `[+-]? digits* ('.' digits*)? ([eE] [+-]? digits+)?`
 * with at least one digit before the exponent. '.5' and '5.' are accepted,
 * like statsd (which uses `Number(text)`). Everything else is rejected:
 * empty text, whitespace, hex (`0x10`), `Infinity`, `NaN`, '_'
 * separators. statsd's `isNaN`/`Number` check accepts '0x10' and
 * 'Infinity'; tallyd does not. Surrounding whitespace (' 1 ') is statsd's
 * `Number()` too: trimmedDecimalInto accepts it, off the hot path. A value that overflows to ±Infinity
 * (`1e999`) is rejected too.
 *
 * The result equals `Number(text)` exactly for every accepted text: short
 * mantissas with small exponents are built from digits with one correctly
 * rounded multiply or divide by an exact power of ten (Clinger's fast path);
 * anything else is handed to `Number()` after the bytes were validated.
 */

import { spaceAt, spaceBefore } from './js-space.js';

const DIGIT_0 = 0x30;
const PLUS = 0x2b;
const MINUS = 0x2d;
const DOT = 0x2e;
const LOWER_E = 0x65;
const UPPER_E = 0x45;

/** Powers of ten that are exact doubles (10^0 .. 10^22). */
const POW10: readonly number[] = Array.from({ length: 23 }, (_, i) => Number(`1e${i}`));

/** Largest count of significant digits whose integer value is always an exact double. */
const MAX_EXACT_DIGITS = 15;

const SCRATCH = new Float64Array(1);

/**
 * Parse buf[start, end) as a decimal number. Returns NaN when the text is
 * not an accepted decimal or is not finite (NaN is never a valid result, so
 * callers test `v !== v`). Never throws. The hot path uses decimalInto: a
 * double returned from a call that is not inlined is boxed (a heap number).
 */
export function parseDecimal(buf: Buffer, start: number, end: number): number {
  return decimalInto(buf, start, end, SCRATCH, 0) ? SCRATCH[0]! : NaN;
}

/**
 * Parse buf[start, end) as a decimal number into out[index]; false (out left
 * as it was) when the text is not an accepted decimal or is not finite.
 * Allocates nothing, except on the slow path (more than 15 significant
 * digits or a power of ten beyond 1e±22), which reads a latin1 copy of the
 * text with Number(). Never throws.
 */
export function decimalInto(buf: Buffer, start: number, end: number, out: Float64Array, index: number): boolean {
  let p = start;
  let neg = false;
  let c = p < end ? buf[p] : -1;
  if (c === PLUS || c === MINUS) {
    neg = c === MINUS;
    p++;
  }
  let mant = 0;
  let sig = 0; // significant digits folded into mant (leading zeros excluded)
  let digits = 0;
  let scale = 0; // minus the number of fraction digits
  while (p < end) {
    const d = buf[p]! - DIGIT_0;
    if (d < 0 || d > 9) break;
    if (sig !== 0 || d !== 0) sig++;
    mant = mant * 10 + d;
    digits++;
    p++;
  }
  if (p < end && buf[p] === DOT) {
    p++;
    while (p < end) {
      const d = buf[p]! - DIGIT_0;
      if (d < 0 || d > 9) break;
      if (sig !== 0 || d !== 0) sig++;
      mant = mant * 10 + d;
      digits++;
      scale--;
      p++;
    }
  }
  if (digits === 0) return false;
  let exp = 0;
  if (p < end) {
    c = buf[p];
    if (c !== LOWER_E && c !== UPPER_E) return false;
    p++;
    let expNeg = false;
    c = p < end ? buf[p] : -1;
    if (c === PLUS || c === MINUS) {
      expNeg = c === MINUS;
      p++;
    }
    let expDigits = 0;
    while (p < end) {
      const d = buf[p]! - DIGIT_0;
      if (d < 0 || d > 9) return false;
      if (exp < 100000) exp = exp * 10 + d; // large enough to force the slow path
      expDigits++;
      p++;
    }
    if (expDigits === 0) return false;
    if (expNeg) exp = -exp;
  }
  let v: number;
  const e10 = exp + scale;
  if (mant === 0) {
    v = 0;
  } else if (sig <= MAX_EXACT_DIGITS && e10 >= -22 && e10 <= 22) {
    v = e10 >= 0 ? mant * POW10[e10]! : mant / POW10[-e10]!;
  } else {
    // Validated above: Number() reads exactly the grammar we accepted.
    v = Number(buf.toString('latin1', start, end));
    if (v === Infinity || v === -Infinity) return false;
    out[index] = v;
    return true;
  }
  out[index] = neg ? -v : v;
  return true;
}

/**
 * decimalInto after trimming JavaScript whitespace from both ends, as
 * statsd's `Number(text)` does (` 3 `, `\u00a03`); false when nothing was
 * trimmed (decimalInto already said no), when only whitespace was there, or
 * when what is left is not an accepted decimal. Called only after
 * decimalInto failed, so well-formed values never pay for it.
 */
export function trimmedDecimalInto(buf: Buffer, start: number, end: number, out: Float64Array, index: number): boolean {
  let s = start;
  let e = end;
  while (s < e) {
    const n = spaceAt(buf, s, e);
    if (n === 0) break;
    s += n;
  }
  while (e > s) {
    const n = spaceBefore(buf, s, e);
    if (n === 0) break;
    e -= n;
  }
  if (s >= e || (s === start && e === end)) return false;
  return decimalInto(buf, s, e, out, index);
}
