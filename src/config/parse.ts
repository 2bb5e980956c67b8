/**
 * Config text -> plain object, never evaluating code. Three syntaxes:
 * - YAML (`.yaml`, `.yml`);
 * - strict JSON (`.json`);
 * - Etsy statsd's bare JS object literal (`.js` and anything else), read as
 *   JSON5: comments, unquoted keys, single quotes, trailing and leading commas.
 *   statsd itself runs `eval('config = ' + data)`; the `module.exports =` /
 *   `export default` wrappers, one pair of parentheses and a final `;` are
 *   blanked out first (keeping line and column numbers). A file of another
 *   extension whose first token is not `{`, `(` or a wrapper is read as YAML.
 * Syntax errors become a ConfigError naming file, line and column; any other
 * parser failure (YAML's alias limit, deep nesting) a ConfigError naming the
 * file and the reason. Nothing here is per character: a large file costs its
 * size, not a string per character.
 */

import JSON5 from 'json5';
import { parseDocument } from 'yaml';
import { ConfigError } from './errors.js';

type Syntax = 'yaml' | 'json' | 'js';

/** yaml's maxAliasCount: how many alias expansions a document may make before it is refused. */
export const MAX_YAML_ALIASES = 100;

const WRAPPER = /module\.exports\s*=|export\s+default\b/y;

function syntaxError(file: string, line: number, column: number, reason: string, cause: unknown): ConfigError {
  return new ConfigError(file, [{ key: '', reason: `syntax error: ${reason}`, line, column }], { cause });
}

/** Index of the first character at or after `i` that is not whitespace or a comment. */
function skipTrivia(text: string, i: number): number {
  while (i < text.length) {
    const c = text[i];
    if (c === ' ' || c === '\t' || c === '\n' || c === '\r' || c === '\uFEFF') {
      i++;
    } else if (text.startsWith('//', i)) {
      const end = text.indexOf('\n', i);
      i = end < 0 ? text.length : end + 1;
    } else if (text.startsWith('/*', i)) {
      const end = text.indexOf('*/', i + 2);
      if (end < 0) return i; // unterminated: let the parser report it
      i = end + 2;
    } else {
      return i;
    }
  }
  return i;
}

/** Index of the bracket closing the one at `open`, skipping strings and comments; -1 if none. */
function matchingClose(text: string, open: number): number {
  let depth = 0;
  let i = open;
  while (i < text.length) {
    const c = text[i];
    if (c === '"' || c === "'") {
      i++;
      while (i < text.length && text[i] !== c) i += text[i] === '\\' ? 2 : 1;
    } else if (c === '/' && (text[i + 1] === '/' || text[i + 1] === '*')) {
      const next = skipTrivia(text, i);
      if (next === i) return -1;
      i = next - 1;
    } else if (c === '(' || c === '[' || c === '{') {
      depth++;
    } else if (c === ')' || c === ']' || c === '}') {
      depth--;
      if (depth === 0) return i;
    }
    i++;
  }
  return -1;
}

/** `text` with the [from, to) ranges turned to spaces, line breaks kept (so line and column numbers stay). */
function blankRanges(text: string, ranges: ReadonlyArray<readonly [number, number]>): string {
  let out = '';
  let last = 0;
  for (const [from, to] of [...ranges].sort((a, b) => a[0] - b[0])) {
    out += text.slice(last, from) + text.slice(from, to).replace(/[^\r\n]/g, ' ');
    last = to;
  }
  return out + text.slice(last);
}

/** Blanks the JS around the object literal so that JSON5 sees the literal alone. */
function unwrapJs(text: string): string {
  const ranges: Array<readonly [number, number]> = [];
  let i = skipTrivia(text, 0);
  WRAPPER.lastIndex = i;
  const wrapper = WRAPPER.exec(text);
  if (wrapper !== null) {
    ranges.push([i, i + wrapper[0].length]);
    i = skipTrivia(text, i + wrapper[0].length);
  }
  let close = -1;
  if (text[i] === '(') {
    close = matchingClose(text, i);
    if (close < 0) return blankRanges(text, ranges);
    ranges.push([i, i + 1], [close, close + 1]);
  } else if (text[i] === '{') {
    close = matchingClose(text, i);
  }
  if (close >= 0) {
    const after = skipTrivia(text, close + 1);
    if (text[after] === ';') ranges.push([after, after + 1]);
  }
  return blankRanges(text, ranges);
}

function detectSyntax(text: string, file: string): Syntax {
  const ext = /\.([^./\\]+)$/.exec(file)?.[1]?.toLowerCase();
  if (ext === 'yaml' || ext === 'yml') return 'yaml';
  if (ext === 'json') return 'json';
  if (ext === 'js' || ext === 'cjs' || ext === 'mjs' || ext === 'json5') return 'js';
  const first = skipTrivia(text, 0);
  WRAPPER.lastIndex = first;
  if (text[first] === '{' || text[first] === '(' || WRAPPER.test(text) || first >= text.length) return 'js';
  return 'yaml';
}

function lineColumn(text: string, offset: number): { line: number; column: number } {
  let line = 1;
  let start = 0;
  for (let i = 0; i < offset && i < text.length; i++) {
    if (text[i] === '\n') {
      line++;
      start = i + 1;
    }
  }
  return { line, column: Math.min(offset, text.length) - start + 1 };
}

function parseJson(text: string, file: string): unknown {
  try {
    return JSON.parse(text) as unknown;
  } catch (err) {
    const message = err instanceof Error ? err.message : String(err);
    const at = /at position (\d+)/.exec(message);
    const pos = lineColumn(text, at?.[1] === undefined ? text.length : Number(at[1]));
    const reason = message.replace(/\s+in JSON at position.*$/s, '').replace(/\s*\(line \d+ column \d+\)$/, '');
    throw syntaxError(file, pos.line, pos.column, `${reason} (strict JSON; use a .js file for comments)`, err);
  }
}

function parseJs(text: string, file: string): unknown {
  try {
    return JSON5.parse(unwrapJs(text)) as unknown;
  } catch (err) {
    const e = err as { message?: unknown; lineNumber?: unknown; columnNumber?: unknown };
    const line = typeof e.lineNumber === 'number' ? e.lineNumber : 1;
    const column = typeof e.columnNumber === 'number' ? e.columnNumber : 1;
    const reason = String(e.message ?? err).replace(/^JSON5: /, '').replace(/ at \d+:\d+$/, '');
    throw syntaxError(file, line, column, `${reason} (an object literal of plain values is expected; code is not run)`, err);
  }
}

function parseYaml(text: string, file: string): unknown {
  const doc = parseDocument(text, { prettyErrors: true, uniqueKeys: true });
  const first = doc.errors[0];
  if (first !== undefined) {
    const pos = first.linePos?.[0] ?? { line: 1, col: 1 };
    const reason = (first.message.split('\n')[0] ?? first.code).replace(/ at line \d+, column \d+:?$/, '');
    throw syntaxError(file, pos.line, pos.col, reason, first);
  }
  try {
    return doc.toJS({ maxAliasCount: MAX_YAML_ALIASES }) as unknown;
  } catch (err) {
    // yaml throws a ReferenceError past maxAliasCount (an alias bomb), and others on unresolvable aliases.
    const message = err instanceof Error ? err.message : String(err);
    const reason = /alias count/i.test(message)
      ? `too many YAML aliases (more than ${MAX_YAML_ALIASES} expansions; an alias bomb?)`
      : `cannot read the YAML document: ${message}`;
    throw new ConfigError(file, [{ key: '', reason }], { cause: err });
  }
}

function describeTop(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'an array';
  return typeof value === 'string' ? 'a string' : `a ${typeof value}`;
}

/** Parses config text (syntax chosen from `file`'s extension, then its content) into a plain object. */
export function parseConfigText(text: string, file: string): Record<string, unknown> {
  const body = text.startsWith('\uFEFF') ? text.slice(1) : text;
  const syntax = detectSyntax(body, file);
  let value: unknown;
  try {
    value = syntax === 'yaml' ? parseYaml(body, file) : syntax === 'json' ? parseJson(body, file) : parseJs(body, file);
  } catch (err) {
    if (err instanceof ConfigError) throw err;
    // Anything else a parser throws (a stack overflow on deep nesting, ...) is still a bad file.
    throw new ConfigError(file, [{ key: '', reason: `cannot parse the config file: ${err instanceof Error ? err.message : String(err)}` }], { cause: err });
  }
  if (syntax === 'yaml' && (value === null || value === undefined)) return {}; // empty YAML document
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new ConfigError(file, [{ key: '', reason: `the top level must be an object of settings, got ${describeTop(value)}` }]);
  }
  return value as Record<string, unknown>;
}
