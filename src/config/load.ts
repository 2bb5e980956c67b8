/**
 * loadConfig: defaults < file < environment < overrides, validated once (all
 * problems in one ConfigError), then deep-frozen. Runs once at start, so it
 * is synchronous.
 *
 * Environment: TALLYD_REDIS_URL (or REDIS_URL), TALLYD_REDIS_KEY_PREFIX,
 * TALLYD_FLUSH_INTERVAL, TALLYD_LOG_LEVEL; empty values are ignored.
 * Overrides: nested objects are merged, other values replace; a key may be a
 * dotted path (`{ 'redis.keyPrefix': 'test:' }`).
 */

import { closeSync, fstatSync, openSync, readSync } from 'node:fs';
import { isObject } from './checker.js';
import { ConfigError, formatProblem } from './errors.js';
import { parseConfigText } from './parse.js';
import type { Config } from './types.js';
import { ENV_KEYS } from './env-keys.js';
import { validate } from './validate.js';

export { parseConfigText } from './parse.js';

export interface LoadConfigOptions {
  /** Config file (statsd JS literal, JSON or YAML); null or absent for defaults only. */
  readonly file?: string | null;
  /** Defaults to process.env. */
  readonly env?: NodeJS.ProcessEnv;
  /** Highest layer, e.g. from command-line flags. */
  readonly overrides?: Record<string, unknown>;
}

export interface LoadedConfig {
  readonly config: Config;
  /** One line per ignored statsd setting, as `<source>: <key>: <reason>`. */
  readonly warnings: string[];
}

type Mutable = Record<string, unknown>;

const NUMERIC_ENV = new Set(['flushInterval']);

const READ_ERRORS: Readonly<Record<string, string>> = {
  ENOENT: 'no such file or directory',
  EACCES: 'permission denied',
  EISDIR: 'is a directory, not a file',
};

/** Largest config file read, in bytes (1 MiB; a statsd config is a few KiB): a bigger one is refused unread. */
export const MAX_CONFIG_BYTES = 1024 * 1024;

function readText(file: string): string {
  let fd: number | undefined;
  try {
    fd = openSync(file, 'r');
    const { size } = fstatSync(fd);
    if (size > MAX_CONFIG_BYTES) {
      throw new ConfigError(file, [{ key: '', reason: `the config file is too large: ${size} bytes, the limit is ${MAX_CONFIG_BYTES} (1 MiB)` }]);
    }
    // Read at most one byte past the limit, in case the file grew since fstat.
    const buf = Buffer.alloc(Math.min(size, MAX_CONFIG_BYTES) + 1);
    let length = 0;
    while (length < buf.length) {
      const n = readSync(fd, buf, length, buf.length - length, null);
      if (n === 0) break;
      length += n;
    }
    if (length > MAX_CONFIG_BYTES) {
      throw new ConfigError(file, [{ key: '', reason: `the config file is too large: over ${MAX_CONFIG_BYTES} bytes (1 MiB)` }]);
    }
    return buf.toString('utf8', 0, length);
  } catch (err) {
    if (err instanceof ConfigError) throw err;
    const code = (err as NodeJS.ErrnoException).code;
    const reason = code !== undefined && READ_ERRORS[code] !== undefined
      ? `${code} (${READ_ERRORS[code]})`
      : err instanceof Error ? err.message : String(err);
    throw new ConfigError(file, [{ key: '', reason: `cannot read the config file: ${reason}` }], { cause: err });
  } finally {
    if (fd !== undefined) closeSync(fd);
  }
}

function isUnsafeKey(key: string): boolean {
  return key === '__proto__' || key === 'constructor' || key === 'prototype';
}

/** Sets `value` at a dotted path, creating sections; leaves a non-object section alone for validation to report. */
function setPath(target: Mutable, path: ReadonlyArray<string>, value: unknown, origin: string, origins: Map<string, string>): void {
  let node = target;
  for (const [i, key] of path.entries()) {
    if (isUnsafeKey(key)) return;
    if (i === path.length - 1) {
      if (isObject(value) && isObject(node[key])) {
        const section = { ...node[key] };
        node[key] = section;
        for (const [k, v] of Object.entries(value)) setPath(section, [k], v, origin, origins);
        return;
      }
      node[key] = value;
      origins.set(path.join('.'), origin);
      return;
    }
    const next = node[key];
    if (next === undefined) node[key] = {};
    else if (isObject(next)) node[key] = { ...next };
    else return;
    node = node[key] as Mutable;
  }
}

function applyEnv(raw: Mutable, env: NodeJS.ProcessEnv, origins: Map<string, string>): void {
  for (const [name, key] of ENV_KEYS) {
    const text = env[name];
    if (text === undefined || text === '') continue;
    const value = NUMERIC_ENV.has(key) && /^\d+$/.test(text.trim()) ? Number(text.trim()) : text;
    setPath(raw, key.split('.'), value, `env ${name}`, origins);
  }
}

function applyOverrides(raw: Mutable, overrides: Record<string, unknown>, origins: Map<string, string>): void {
  for (const [key, value] of Object.entries(overrides)) {
    if (value !== undefined) setPath(raw, key.split('.'), value, 'overrides', origins);
  }
}

/** The layer a problem's key (or the nearest section above it) was set by, if not the file. */
function originFinder(origins: ReadonlyMap<string, string>): (key: string) => string | undefined {
  return (key) => {
    let k = key;
    for (;;) {
      const found = origins.get(k);
      if (found !== undefined) return found;
      const up = k.replace(/(?:\.[^.[]*|\[\d+\])$/, '');
      if (up === k || up === '') return undefined;
      k = up;
    }
  };
}

function deepFreeze<T>(value: T): T {
  if (typeof value === 'object' && value !== null && !Object.isFrozen(value)) {
    for (const child of Object.values(value)) deepFreeze(child);
    Object.freeze(value);
  }
  return value;
}

export function loadConfig(opts: LoadConfigOptions = {}): LoadedConfig {
  const file = opts.file ?? null;
  const raw: Mutable = file === null ? {} : { ...parseConfigText(readText(file), file) };
  const origins = new Map<string, string>();
  applyEnv(raw, opts.env ?? process.env, origins);
  applyOverrides(raw, opts.overrides ?? {}, origins);

  const result = validate(raw, file, originFinder(origins));
  if (result.config === null) throw new ConfigError(file, result.problems);
  return {
    config: deepFreeze(result.config),
    warnings: result.warnings.map((w) => formatProblem(file, w)),
  };
}
