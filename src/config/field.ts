/**
 * The building blocks of the config schema (schema.ts): a Field declares one
 * key once — how it is read and validated (through the Checker, so every
 * problem is collected with its exact text), its default, and its
 * documentation — and the Config type, DEFAULTS, the known-key lists and
 * docs/config.md are all derived from the declarations.
 */
import { type Checker, type Raw } from './checker.js';

/** Where a key comes from: statsd's own (same meaning and default as Etsy statsd 0.9) or tallyd's. */
export type Origin = 'statsd' | 'tallyd';

/** Keys of the same section read before this one (batchInterval follows flushInterval, address follows address_ipv6). */
export type Done = Readonly<Record<string, unknown>>;

export interface Field<T> {
  /** The value of an empty file. */
  readonly default: T;
  /** The default as docs/config.md shows it, when the value alone would mislead (a derived or unset default). */
  readonly defaultText?: string;
  /** Markdown for docs/config.md: what the key does, its unit, what happens at its bound. */
  readonly doc: string;
  readonly origin: Origin;
  /** Reads obj[key]; a bad value is a Checker problem and the default is returned. */
  read(c: Checker, obj: Raw, key: string, path: string, done: Done): T;
  /** A section's own fields, for the docs and the key lists (absent for plain keys). */
  readonly fields?: Fields;
  /** A section's keys that statsd has and tallyd ignores, with why. */
  readonly ignored?: Readonly<Record<string, string>>;
}

/** A section's declarations, in the order they are read and documented. */
export type Fields = Readonly<Record<string, Field<unknown>>>;

/** The resolved shape of a set of declarations. */
export type Resolved<F> = { readonly [K in keyof F]: F[K] extends Field<infer T> ? T : never };

interface Meta {
  readonly doc: string;
  readonly origin?: Origin;
  readonly defaultText?: string;
}

function field<T>(def: T, meta: Meta, read: Field<T>['read']): Field<T> {
  return { default: def, doc: meta.doc, origin: meta.origin ?? 'tallyd', defaultText: meta.defaultText, read };
}

export function bool(def: boolean, meta: Meta): Field<boolean> {
  return field(def, meta, (c, o, k, p) => c.bool(o, k, p, def));
}

export function str(def: string, meta: Meta & { nonEmpty?: boolean }): Field<string> {
  return field(def, meta, (c, o, k, p) => c.str(o, k, p, def, meta.nonEmpty ?? false));
}

export function oneOf<T extends string>(def: T, allowed: ReadonlyArray<T>, meta: Meta): Field<T> {
  return field(def, meta, (c, o, k, p) => c.oneOf(o, k, p, def, allowed));
}

/** A positive integer number of milliseconds. */
export function millis(def: number, meta: Meta): Field<number> {
  return field(def, meta, (c, o, k, p) => c.millis(o, k, p, def));
}

/** A positive integer (a count or a size in bytes). */
export function count(def: number, meta: Meta): Field<number> {
  return field(def, meta, (c, o, k, p) => c.count(o, k, p, def));
}

export function port(def: number, meta: Meta & { min?: number }): Field<number> {
  return field(def, meta, (c, o, k, p) => c.port(o, k, p, def, meta.min ?? 0));
}

/** An integer in [min, max]; `what` completes the error "must be ...". */
export function int(def: number, min: number, max: number, what: string, meta: Meta): Field<number> {
  return field(def, meta, (c, o, k, p) => c.int(o, k, p, def, min, max, what));
}

/** A key with its own reading rules (lists, derived defaults, statsd's special cases). */
export function custom<T>(def: T, meta: Meta, read: Field<T>['read']): Field<T> {
  return field(def, meta, read);
}

/** Reads a section's fields in declaration order, each seeing the ones read before it. */
export function readFields<F extends Fields>(c: Checker, obj: Raw, path: string, fields: F, skip: ReadonlySet<string> = new Set(),
  done: Record<string, unknown> = {}): Resolved<F> {
  for (const [key, f] of Object.entries(fields)) {
    if (!skip.has(key)) done[key] = f.read(c, obj, key, path, done);
  }
  return done as Resolved<F>;
}

/** The defaults of a set of fields, as an empty file resolves them. */
export function defaultsOf<F extends Fields>(fields: F): Resolved<F> {
  const out: Record<string, unknown> = {};
  for (const [key, f] of Object.entries(fields)) out[key] = f.default;
  return out as Resolved<F>;
}

/**
 * A nested object of its own keys (`redis: {...}`, `graphite: {...}`): an
 * unknown key in it is a warning (an error under strictConfig) with a
 * "did you mean" hint; `ignored` are statsd keys tallyd accepts and ignores.
 */
export function section<F extends Fields>(fields: F, meta: Meta & { ignored?: Readonly<Record<string, string>>;
  after?: (c: Checker, raw: Raw, path: string, value: Resolved<F>) => Resolved<F>; }): Field<Resolved<F>> {
  const def = Object.freeze(defaultsOf(fields));
  return {
    default: def,
    doc: meta.doc,
    origin: meta.origin ?? 'tallyd',
    fields,
    ignored: meta.ignored,
    read(c, obj, key, path) {
      const s = c.section(obj, key, path);
      const at = path === '' ? key : `${path}.${key}`;
      c.keys(s, at, Object.keys(fields), meta.ignored ?? {});
      const value = readFields(c, s, at, fields);
      return meta.after === undefined ? value : meta.after(c, s, at, value);
    },
  };
}
