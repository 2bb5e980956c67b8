/**
 * docs/config.md, rendered from the declarations in schema.ts, so the
 * reference cannot drift from the code: `npm run docs:config` writes it and
 * test/unit/config-docs.test.ts fails when the committed file differs.
 */
import type { Field, Fields } from './field.js';
import { TOP_FIELDS, UNIMPLEMENTED_TOP_LEVEL } from './schema.js';
import { SERVER_DEFAULTS, serverFields, UNIMPLEMENTED_SERVER, ZMQ_FIELDS } from './schema-servers.js';
import { ENV_KEYS } from './env-keys.js';

const INTRO = `# Configuration reference

<!-- Generated from src/config/schema.ts by \`npm run docs:config\`; edit the declarations there, not this file. -->

An Etsy statsd config file works as it is: the bare JS object literal of
statsd's \`exampleConfig.js\`, JSON, or the same keys in YAML (\`.yaml\` or
\`.yml\`). tallyd reads JS files as JSON5 and never evaluates them.
Precedence, lowest first: defaults, then the file, then the environment
variables below; the command line names the file and sets no key.
\`config/tallyd.conf.js\` is the shipped file, with a
comment on every key; \`config/statsd-example.js\` is an Etsy-style file that
tallyd loads unchanged.

Every problem in the file is reported at once, each with the file, the key
and the reason, and tallyd exits with status 2:

\`\`\`
tallyd: bad config
config/x.js: percentThreshold: must be a number or an array of numbers, each non-zero and between -100 and 100, got "ninety"
config/x.js: mgmt_port: must be an integer port number 0..65535, got 70000
\`\`\`

A key tallyd does not know loads with a warning and is ignored, as statsd
ignores keys it does not read (real statsd configs carry \`graphService\`,
\`batch\` or a third-party backend's settings); a likely typo gets a
suggestion, \`config/x.js: flushInteval: unknown key, ignored (did you mean
flushInterval?)\`. With \`strictConfig: true\` unknown keys are errors instead.

A config file may be at most 1 MiB; a bigger one is refused unread. A syntax
error names the file, line and column; any other parser failure (a YAML
alias bomb past 100 alias expansions, nesting too deep) names the file and
the reason. \`tallyd --check\` prints the resolved config with passwords
hidden (\`redis://user:***@host\`, \`?password=***\`), as do the console's
\`config\` command and every error and log line.
`;

function cell(text: string): string {
  return text.replace(/\|/g, '\\|').replace(/\n/g, ' ');
}

function defaultText(f: Field<unknown>): string {
  if (f.defaultText !== undefined) return f.defaultText;
  const v = f.default;
  if (v === null) return 'none';
  if (typeof v === 'string') return v === '' ? '`""`' : `\`${v}\``;
  if (typeof v === 'number' || typeof v === 'boolean') return String(v);
  return `\`${JSON.stringify(v)}\``;
}

/** Rows of a table: sections are flattened to `section.key`. */
function rows(fields: Fields, prefix: string, want: (f: Field<unknown>) => boolean): string[] {
  const out: string[] = [];
  for (const [key, f] of Object.entries(fields)) {
    const name = `${prefix}${key}`;
    if (f.fields !== undefined) {
      out.push(...rows(f.fields, `${name}.`, want));
      continue;
    }
    if (want(f)) out.push(`| \`${name}\` | ${cell(defaultText(f))} | ${cell(f.doc)} |`);
  }
  return out;
}

function table(title: string, intro: string, lines: string[]): string {
  return `\n## ${title}\n\n${intro}\n\n| key | default | meaning |\n| --- | --- | --- |\n${lines.join('\n')}\n`;
}

function ignoredList(what: string, keys: Readonly<Record<string, string>>): string {
  return Object.entries(keys).map(([k, why]) => `- ${what}\`${k}\`: ${why}`).join('\n');
}

export function renderConfigDocs(): string {
  const statsd = (f: Field<unknown>): boolean => f.origin === 'statsd';
  const tallyd = (f: Field<unknown>): boolean => f.origin === 'tallyd';
  const server = serverFields(SERVER_DEFAULTS);
  return INTRO
    + table("statsd's keys", 'Same meanings and defaults as Etsy statsd 0.9.', rows(TOP_FIELDS, '', statsd))
    + table("tallyd's own keys", 'Keys statsd does not have.', rows(TOP_FIELDS, '', tallyd))
    + table('servers', 'The keys of an entry of `servers` for a statsd server (`server: "udp"` or `"tcp"`; missing means udp). '
      + 'Without `servers`, the same keys at the top level describe a single server, as in statsd.', rows(server, 'servers[].', () => true))
    + table('ZeroMQ sockets', 'The keys of an entry `{server: "zmq", ...}` of `servers`: a socket tallyd binds for ZeroMQ status messages '
      + '(see [ZeroMQ status messages](../README.md#zeromq-status-messages)).', rows(ZMQ_FIELDS, 'servers[].', () => true))
    + `\n## Environment\n\n| variable | overrides |\n| --- | --- |\n${ENV_KEYS.map(([name, key]) => `| \`${name}\` | \`${key}\` |`).join('\n')}\n`
    + `\n## statsd keys tallyd ignores\n\nThey load with a warning (\`debug: false\` and \`automaticConfigReload: false\` silently), so a statsd file works as it is.\n\n`
    + `${ignoredList('', UNIMPLEMENTED_TOP_LEVEL)}\n${ignoredList('servers[].', UNIMPLEMENTED_SERVER)}\n`
    + ignoredSections(TOP_FIELDS);
}

function ignoredSections(fields: Fields): string {
  const out: string[] = [];
  for (const [key, f] of Object.entries(fields)) {
    if (f.ignored !== undefined) out.push(ignoredList(`${key}.`, f.ignored));
  }
  return out.length === 0 ? '' : `${out.join('\n')}\n`;
}
