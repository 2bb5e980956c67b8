/**
 * Default values, as declared in schema.ts: Etsy statsd 0.9's (stats.js,
 * backends/graphite.js, servers/*.js) for every statsd key, then tallyd's
 * own. A key left out of the config file resolves to the value here.
 */
import { defaultsOf } from './field.js';
import { TOP_FIELDS } from './schema.js';
import type { Config } from './types.js';

export { defaultBatchInterval } from './schema.js';
export { DEFAULT_SERVER, defaultAddress } from './schema-servers.js';
export { DEFAULT_HTTP, LOG_LEVELS } from './schema-sections.js';
export { TIMER_METRICS } from './validate-lists.js';

/** The resolved config of an empty file. */
export const DEFAULTS: Config = Object.freeze({ source: null, ...defaultsOf(TOP_FIELDS) });
