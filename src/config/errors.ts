/**
 * The one error the config stage throws. Validation collects every problem
 * first, so a user fixes a bad file in one pass; the message lists them all,
 * one per line, as `<source>: <key>: <reason>` (`<file>:<line>:<col>: <reason>`
 * for a syntax error).
 */

export interface ConfigProblem {
  /** Dotted path of the offending key (`servers[1].port`), or '' for the file as a whole. */
  readonly key: string;
  readonly reason: string;
  /** Where the value came from when it was not the file (`env REDIS_URL`, `overrides`). */
  readonly source?: string;
  /** 1-based position of a syntax error. */
  readonly line?: number;
  readonly column?: number;
}

export interface ConfigErrorOptions {
  readonly cause?: unknown;
}

/** Formats one problem as a line of a ConfigError message (also used for warnings). */
export function formatProblem(file: string | null, problem: ConfigProblem): string {
  let where = problem.source ?? file ?? '';
  if (where !== '' && problem.line !== undefined) {
    where += `:${problem.line}:${problem.column ?? 1}`;
  }
  return [where, problem.key, problem.reason].filter((part) => part !== '').join(': ');
}

export class ConfigError extends Error {
  readonly code = 'ECONFIG';
  /** The config file, or null when no file was read. */
  readonly file: string | null;
  readonly problems: ReadonlyArray<ConfigProblem>;

  constructor(file: string | null, problems: ReadonlyArray<ConfigProblem>, options: ConfigErrorOptions = {}) {
    const list = problems.length > 0 ? problems : [{ key: '', reason: 'invalid configuration' }];
    super(list.map((p) => formatProblem(file, p)).join('\n'), options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'ConfigError';
    this.file = file;
    this.problems = Object.freeze(list.map((p) => Object.freeze({ ...p })));
  }
}
