/**
 * Collects problems and warnings while reading a raw config object, so that
 * validation reports every problem at once. Each getter returns the
 * fallback (the default) when the key is absent or its value is invalid.
 */

import type { ConfigProblem } from './errors.js';
import { describe, suggest } from './describe.js';

export type Raw = Readonly<Record<string, unknown>>;

/** Where a dotted key's value came from when it was not the file (env var, overrides), or undefined. */
export type OriginOf = (key: string) => string | undefined;

export function isObject(value: unknown): value is Raw {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

export function join(path: string, key: string | number): string {
  if (typeof key === 'number') return `${path}[${key}]`;
  return path === '' ? key : `${path}.${key}`;
}

export class Checker {
  readonly problems: ConfigProblem[] = [];
  readonly warnings: ConfigProblem[] = [];

  /**
   * `strictConfig`: an unknown key is an error rather than a warning. statsd
   * ignores keys it does not read, so real statsd configs carry some.
   */
  strict = false;

  constructor(private readonly originOf: OriginOf) {}

  private at(key: string, reason: string): ConfigProblem {
    const source = this.originOf(key);
    return source === undefined ? { key, reason } : { key, reason, source };
  }

  problem(key: string, reason: string): void {
    this.problems.push(this.at(key, reason));
  }

  warn(key: string, reason: string): void {
    this.warnings.push(this.at(key, reason));
  }

  /**
   * Checks that `obj` holds only `known` keys. `ignored` keys get their
   * warning; other keys a warning "unknown key, ignored" with a "did you mean"
   * hint when one is close. Under `strict` they are errors, except those
   * `lenient` explains (a setting of a third-party backend, when no known key
   * is close).
   */
  keys(obj: Raw, path: string, known: ReadonlyArray<string>, ignored: Readonly<Record<string, string>> = {},
    lenient?: (key: string) => string | null): void {
    for (const key of Object.keys(obj)) {
      if (known.includes(key)) continue;
      const full = join(path, key);
      const why = Object.hasOwn(ignored, key) ? ignored[key] : undefined;
      if (why !== undefined) {
        this.warn(full, why);
        continue;
      }
      const hint = suggest(key, [...known, ...Object.keys(ignored)]);
      const soft = hint === null ? lenient?.(key) ?? null : null;
      const didYouMean = hint === null ? '' : ` (did you mean ${hint}?)`;
      if (soft !== null) this.warn(full, soft);
      else if (this.strict) this.problem(full, `unknown key${didYouMean}`);
      else this.warn(full, `unknown key, ignored${didYouMean}`);
    }
  }

  bool(obj: Raw, key: string, path: string, fallback: boolean): boolean {
    const value = obj[key];
    if (value === undefined) return fallback;
    if (typeof value === 'boolean') return value;
    this.problem(join(path, key), `must be true or false, got ${describe(value)}`);
    return fallback;
  }

  str(obj: Raw, key: string, path: string, fallback: string, nonEmpty = false): string {
    const value = obj[key];
    if (value === undefined) return fallback;
    if (typeof value === 'string' && (!nonEmpty || value !== '')) return value;
    this.problem(join(path, key), `must be a ${nonEmpty ? 'non-empty ' : ''}string, got ${describe(value)}`);
    return fallback;
  }

  oneOf<T extends string>(obj: Raw, key: string, path: string, fallback: T, allowed: ReadonlyArray<T>): T {
    const value = obj[key];
    if (value === undefined) return fallback;
    const found = allowed.find((a) => a === value);
    if (found !== undefined) return found;
    const list = allowed.map((a) => JSON.stringify(a));
    const text = list.length === 2 ? `${list[0]} or ${list[1]}` : `one of ${list.join(', ')}`;
    this.problem(join(path, key), `must be ${text}, got ${describe(value)}`);
    return fallback;
  }

  /** An integer in [min, max]; `what` completes "must be ...". */
  int(obj: Raw, key: string, path: string, fallback: number, min: number, max: number, what: string): number {
    const value = obj[key];
    if (value === undefined) return fallback;
    if (typeof value === 'number' && Number.isInteger(value) && value >= min && value <= max) return value;
    this.problem(join(path, key), `must be ${what}, got ${describe(value)}`);
    return fallback;
  }

  port(obj: Raw, key: string, path: string, fallback: number, min = 0): number {
    return this.int(obj, key, path, fallback, min, 65535, `an integer port number ${min}..65535`);
  }

  millis(obj: Raw, key: string, path: string, fallback: number): number {
    return this.int(obj, key, path, fallback, 1, Number.MAX_SAFE_INTEGER, 'a positive integer number of milliseconds');
  }

  count(obj: Raw, key: string, path: string, fallback: number): number {
    return this.int(obj, key, path, fallback, 1, Number.MAX_SAFE_INTEGER, 'a positive integer');
  }

  /** A nested section: an object, or absent (returns {}). */
  section(obj: Raw, key: string, path: string): Raw {
    const value = obj[key];
    if (value === undefined) return {};
    if (isObject(value)) return value;
    this.problem(join(path, key), `must be an object, got ${describe(value)}`);
    return {};
  }

  /** An array, or absent (returns null). */
  array(obj: Raw, key: string, path: string, what: string): ReadonlyArray<unknown> | null {
    const value = obj[key];
    if (value === undefined) return null;
    if (Array.isArray(value)) return value;
    this.problem(join(path, key), `must be ${what}, got ${describe(value)}`);
    return null;
  }
}
