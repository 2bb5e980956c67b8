/**
 * The key lists, derived from the declarations (schema.ts): every key tallyd
 * reads, and the Etsy statsd keys it knows but does not implement (those
 * load with a warning, so a statsd file works as it is). Any other key warns
 * ("unknown key, ignored"), with a "did you mean" hint for a likely typo, as
 * statsd ignores keys it does not read; it is an error only with
 * `strictConfig: true`.
 */
import { TOP_FIELDS } from './schema.js';
import { CONSOLE_FIELDS, GRAPHITE_FIELDS, LOG_FIELDS, REDIS_FIELDS } from './schema-sections.js';
import { SERVER_KEYS } from './schema-servers.js';

export { describe, suggest } from './describe.js';
export { UNIMPLEMENTED_TOP_LEVEL } from './schema.js';
export { SYSLOG_LEVELS, UNIMPLEMENTED_LOG } from './schema-sections.js';
export { SERVER_KEYS, UNIMPLEMENTED_SERVER, ZMQ_SERVER_KEYS } from './schema-servers.js';
export { HISTOGRAM_KEYS } from './validate-lists.js';

/** Top-level keys: the declared ones, and statsd's single-server keys (used when `servers` is absent). */
export const TOP_LEVEL_KEYS: ReadonlyArray<string> = [...new Set([...SERVER_KEYS, ...Object.keys(TOP_FIELDS)])];
export const GRAPHITE_KEYS: ReadonlyArray<string> = Object.keys(GRAPHITE_FIELDS);
export const REDIS_KEYS: ReadonlyArray<string> = Object.keys(REDIS_FIELDS);
export const LOG_KEYS: ReadonlyArray<string> = Object.keys(LOG_FIELDS);
export const CONSOLE_KEYS: ReadonlyArray<string> = Object.keys(CONSOLE_FIELDS);
