/** Status codes of the statsd line parser (statsd-line.ts): 0 is ok, each other one a reason to drop a line. */

export const LINE_OK = 0;
/** Only whitespace / '\r' on the line. */
export const LINE_EMPTY = 1;
/** No ':' after the name, or an empty number. */
export const LINE_NO_VALUE = 2;
/** Empty name, before or after sanitizing. */
export const LINE_EMPTY_NAME = 3;
/** Key (with tags, after sanitizing) longer than maxNameLength bytes of UTF-8. */
export const LINE_NAME_TOO_LONG = 4;
/** A value not followed by '|type'. */
export const LINE_NO_TYPE = 5;
export const LINE_BAD_TYPE = 6;
/** Not a decimal number, or not finite. */
export const LINE_BAD_VALUE = 7;
/** `ms` below zero. */
export const LINE_NEGATIVE_TIMER = 8;
/** Not a decimal in (0, 1], or two rates on one value. */
export const LINE_BAD_RATE = 9;
/** Two tag fields, or an empty tag. */
export const LINE_BAD_TAGS = 10;
/** Unknown field after the type, or a bad `T<ts>`. */
export const LINE_BAD_FIELD = 11;
/** More than MAX_VALUES (64) values on one line. */
export const LINE_TOO_MANY_VALUES = 12;

const STATUS_TEXT: readonly string[] = [
  'ok',
  'empty line',
  'missing value',
  'empty name',
  'name too long',
  'missing type',
  'unknown type',
  'bad value',
  'negative timer value',
  'bad sample rate',
  'bad tags',
  'unknown field',
  'too many values',
];

/** A human reason for a status code, for logs. */
export function statusText(code: number): string {
  return STATUS_TEXT[code] ?? `unknown status ${code}`;
}

