/**
 * Raw merged settings -> Config. Every key declared in schema.ts is read
 * through its Field (so every problem is collected, never thrown one by one)
 * and returned with the warnings about statsd keys tallyd accepts but
 * ignores. Absent keys take their declared default, with statsd's own
 * resolution rules where the declaration has them (deleteIdleStats,
 * gaugesMaxTTL, ...).
 */

import { Checker, type OriginOf, type Raw } from './checker.js';
import { describe } from './describe.js';
import type { ConfigProblem } from './errors.js';
import { readFields } from './field.js';
import { TOP_LEVEL_KEYS } from './keys.js';
import { TOP_FIELDS, UNIMPLEMENTED_TOP_LEVEL } from './schema.js';
import type { Config } from './types.js';
import { otherBackends } from './validate-lists.js';

export interface Validated {
  /** The resolved config, or null when there are problems. */
  readonly config: Config | null;
  readonly problems: ReadonlyArray<ConfigProblem>;
  readonly warnings: ReadonlyArray<ConfigProblem>;
}

function checkTopLevel(c: Checker, raw: Raw): void {
  // Settings that match what tallyd does anyway need no warning.
  const known = [...TOP_LEVEL_KEYS];
  if (raw['debug'] === false) known.push('debug');
  if (raw['automaticConfigReload'] === false) known.push('automaticConfigReload');
  const others = otherBackends(raw);
  const lenient = others.length === 0 ? undefined
    : (): string => `unknown key, ignored (perhaps a setting of ${others.map(describe).join(' or ')}, not loaded by tallyd)`;
  c.keys(raw, '', known, UNIMPLEMENTED_TOP_LEVEL, lenient);
}

/** Problems in the order their top-level keys appear in the settings (file order), then the rest. */
function inKeyOrder(raw: Raw, problems: ReadonlyArray<ConfigProblem>): ConfigProblem[] {
  const order = Object.keys(raw);
  const rank = (p: ConfigProblem): number => {
    const i = order.indexOf(p.key.split(/[.[]/)[0] ?? '');
    return i < 0 ? order.length : i;
  };
  return problems.map((p, i) => ({ p, i })).sort((a, b) => rank(a.p) - rank(b.p) || a.i - b.i).map(({ p }) => p);
}

export function validate(raw: Raw, source: string | null, originOf: OriginOf): Validated {
  const c = new Checker(originOf);
  // strictConfig decides whether the unknown keys are errors, so it is read before they are checked.
  const strictConfig = TOP_FIELDS.strictConfig.read(c, raw, 'strictConfig', '', {});
  c.strict = strictConfig;
  const backends = TOP_FIELDS.backends.read(c, raw, 'backends', '', {});
  checkTopLevel(c, raw);
  const fields = readFields(c, raw, '', TOP_FIELDS, new Set(['strictConfig', 'backends']), { strictConfig, backends });
  const config: Config = { source, ...fields };
  return {
    config: c.problems.length === 0 ? config : null,
    problems: inKeyOrder(raw, c.problems),
    warnings: inKeyOrder(raw, c.warnings),
  };
}
