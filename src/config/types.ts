/**
 * The resolved, validated configuration. Its shape is derived from the
 * declarations in schema.ts (one per key: reading, validation, default,
 * documentation), so a key is added in one place. Field names follow Etsy
 * statsd's config keys where statsd has them, so a statsd config file maps
 * onto this shape without renaming; tallyd's own settings live in their own
 * sections (`redis`, `log`) or are tallyd-only keys (`batchInterval`, ...).
 */
import type { Resolved } from './field.js';
import type { TOP_FIELDS } from './schema.js';
import type { CONSOLE_FIELDS, GRAPHITE_FIELDS, HTTP_FIELDS, LOG_FIELDS, REDIS_FIELDS } from './schema-sections.js';

export type {
  AnyServerConfig, ServerConfig, ServerKind, UdpReaderKind, ZmqMode, ZmqServerConfig, ZmqSocketType,
} from './schema-servers.js';
export { isZmqServer } from './schema-servers.js';
export type { BackendName, HistogramConfig } from './validate-lists.js';

export type GraphiteConfig = Resolved<typeof GRAPHITE_FIELDS>;
export type RedisConfig = Resolved<typeof REDIS_FIELDS>;
export type LogConfig = Resolved<typeof LOG_FIELDS>;
export type ConsoleBackendConfig = Resolved<typeof CONSOLE_FIELDS>;
/** The HTTP server (src/http/server.ts); Config.http is null when the key is absent. */
export type HttpConfig = Resolved<typeof HTTP_FIELDS>;

export type Config = {
  /** Path of the file the config came from, or null for defaults only. */
  readonly source: string | null;
} & Resolved<typeof TOP_FIELDS>;
