/**
 * The nested sections of the config file (`graphite`, `redis`, `log`,
 * `console`), declared once (see field.ts).
 */
import { describe } from './describe.js';
import { bool, count, custom, defaultsOf, type Field, int, millis, oneOf, port, type Resolved, section, str } from './field.js';
import { readCredential, readNodes, readWaitReplicas } from './schema-redis.js';
import { redactUrl } from './redact.js';

export const GRAPHITE_FIELDS = {
  legacyNamespace: bool(true, { origin: 'statsd', doc: 'statsd\'s legacy names (`stats.x`, `stats_counts.x`, `stats.timers.x.*`)' }),
  globalPrefix: str('stats', { origin: 'statsd', doc: 'first part of every name when `legacyNamespace` is false' }),
  prefixCounter: str('counters', { origin: 'statsd', doc: 'counters\' part of the name when `legacyNamespace` is false' }),
  prefixTimer: str('timers', { origin: 'statsd', doc: 'timers\' part of the name when `legacyNamespace` is false' }),
  prefixGauge: str('gauges', { origin: 'statsd', doc: 'gauges\' part of the name when `legacyNamespace` is false' }),
  prefixSet: str('sets', { origin: 'statsd', doc: 'sets\' part of the name when `legacyNamespace` is false' }),
  globalSuffix: str('', { origin: 'statsd', defaultText: 'none', doc: 'appended (after a `.`, before any tags) to every name, with the legacy namespace or without, as in statsd; e.g. a host name' }),
};

export const graphiteSection = section(GRAPHITE_FIELDS, { origin: 'statsd', doc: 'statsd\'s Graphite naming options' });

const DEFAULT_REDIS_URL = 'redis://127.0.0.1:6379';

export const REDIS_FIELDS = {
  url: custom(DEFAULT_REDIS_URL, {
    doc: '`redis://` or `rediss://`; overridden by `REDIS_URL` and then by `TALLYD_REDIS_URL`. Passwords are never shown (`redis://user:***@host`)',
  }, (c, o, k, p) => {
    const url = c.str(o, k, p, DEFAULT_REDIS_URL);
    if (!/^rediss?:\/\/./.test(url)) {
      c.problem(`${p}.${k}`, `must start with redis:// or rediss://, got ${describe(redactUrl(url))}`);
      return DEFAULT_REDIS_URL;
    }
    if (!URL.canParse(url)) {
      c.problem(`${p}.${k}`, `is not a valid URL (percent-encode @ / : ? # in a password as %40 %2F %3A %3F %23), got ${describe(redactUrl(url))}`);
      return DEFAULT_REDIS_URL;
    }
    return url;
  }),
  keyPrefix: custom('tallyd:', { doc: 'processes sharing a prefix act as one; keys are `<prefix>v2:{<shard tag>}:<name>` (`{0}` with one shard)' }, (c, o, k, p) => {
    const keyPrefix = c.str(o, k, p, 'tallyd:');
    if (/[{}]/.test(keyPrefix)) c.problem(`${p}.${k}`, `must not contain { or } (tallyd adds the hash tag), got ${describe(keyPrefix)}`);
    return keyPrefix;
  }),
  shards: int(16, 1, 1024, 'an integer from 1 to 1024', {
    doc: 'logical shards the state is split into by a hash of each name: each has its own keys (hash tag), merge and flushing leader, so '
      + 'merging spreads over a Redis Cluster\'s masters and flushing over the tallyd processes. Recorded in Redis at first start; a process '
      + 'with another value refuses to start. 1 is the layout of tallyd before shards (keys `<prefix>v2:{0}:...`)',
  }),
  nodes: custom<ReadonlyArray<string>>(Object.freeze([]), {
    defaultText: 'none', doc: 'a Redis Cluster\'s seed nodes (`["host:port", ...]`): tallyd opens a Cluster client; not together with `url`',
  }, readNodes),
  username: custom('', {
    defaultText: 'none',
    doc: 'the ACL user (Redis 6+) tallyd authenticates as, on every node of `nodes` or at `url`; needs `password`. Without it, `password` is '
      + 'the `default` user\'s (`requirepass`)',
  }, readCredential('username')),
  password: custom('', {
    defaultText: 'none',
    doc: 'the password for `nodes` (every node of a Redis Cluster with `requirepass` and `masterauth`, or an ACL user\'s) or for `url` (instead '
      + 'of `redis://user:pw@host`); overridden by `TALLYD_REDIS_PASSWORD`. Never shown: `--check` and the console\'s `config` print `***`, and no log line or error holds it',
  }, readCredential('password')),
  waitReplicas: custom(0, {
    defaultText: '1 with `nodes`, else 0',
    doc: 'replicas that must confirm (`WAIT`) each merge before it counts (commits are waited for too); 0 risks losing acknowledged merges on a failover',
  }, readWaitReplicas),
  commandTimeout: millis(10000, {
    doc: 'ms without a reply after which a Redis command fails; each is counted (`statsd.redis_timeouts`) and logged, and the batch is kept '
      + 'and retried (merged at most once), so a Redis that hangs without closing the connection is noticed',
  }),
  waitTimeout: custom(1000, {
    defaultText: '1000 (at most half of `commandTimeout`)',
    doc: 'ms a `WAIT` may block; a merge not confirmed in time is kept and retried (merged at most once). Less than `commandTimeout`: a '
      + 'WAIT holds the connection the heartbeats and the console share',
  }, (c, o, k, p, done) => {
    const commandTimeout = done['commandTimeout'] as number;
    const fallback = Math.max(1, Math.min(1000, Math.floor(commandTimeout / 2)));
    const ms = c.millis(o, k, p, fallback);
    if (ms < commandTimeout || o[k] === undefined) return ms;
    c.problem(`${p}.${k}`, `must be less than redis.commandTimeout (${commandTimeout}), got ${ms}`);
    return fallback;
  }),
  embedded: oneOf<'auto' | 'always' | 'never'>('auto', ['auto', 'always', 'never'], {
    doc: 'a private `redis-server` (from PATH) for a trial: `auto` when `redis.url` is the default and nothing listens there, `always`, or `never`. '
      + 'Loopback, a free port, AOF data in `$XDG_STATE_HOME/tallyd/trial-redis` (`~/.local/state/...`), named in the log, stopped with tallyd, '
      + 'also when tallyd is killed (a watchdog)',
  }),
};

export const redisSection = section(REDIS_FIELDS, { doc: 'where the aggregation state lives' });

export type LogLevel = 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace' | 'silent';
export const LOG_LEVELS: ReadonlyArray<LogLevel> = Object.freeze(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']);

/** statsd's syslog level names, mapped to the nearest pino level. */
export const SYSLOG_LEVELS: Readonly<Record<string, 'fatal' | 'error' | 'warn' | 'info' | 'debug'>> = {
  LOG_EMERG: 'fatal', LOG_ALERT: 'fatal', LOG_CRIT: 'fatal', LOG_ERR: 'error',
  LOG_WARNING: 'warn', LOG_NOTICE: 'info', LOG_INFO: 'info', LOG_DEBUG: 'debug',
};

export const LOG_FIELDS = {
  level: custom<LogLevel>('info', {
    doc: 'pino logs on stderr: `fatal` … `trace`, `silent`; statsd\'s syslog names (`LOG_INFO`, ...) are read as the nearest level',
  }, (c, o, k, p) => {
    const level = o[k];
    const syslog = typeof level === 'string' && Object.hasOwn(SYSLOG_LEVELS, level) ? SYSLOG_LEVELS[level] : undefined;
    if (syslog === undefined) return c.oneOf(o, k, p, 'info', LOG_LEVELS);
    c.warn(`${p}.${k}`, `statsd's syslog level ${describe(level)} is read as pino level "${syslog}"`);
    return syslog;
  }),
  format: oneOf<'auto' | 'pretty' | 'json'>('auto', ['auto', 'pretty', 'json'], {
    doc: '`pretty` (one readable line per entry, pino-pretty in-process), `json` (JSON lines), `auto` (pretty when stderr is a terminal)',
  }),
};

/** statsd's `log: { backend, application, level }`: backend and application are not used. */
export const UNIMPLEMENTED_LOG: Readonly<Record<string, string>> = {
  backend: 'tallyd logs to stderr (pino, log.format); statsd\'s log backend is ignored',
  application: 'statsd\'s syslog application name is ignored',
};

export const logSection = section(LOG_FIELDS, { doc: 'logging', ignored: UNIMPLEMENTED_LOG });

export const CONSOLE_FIELDS = {
  prettyprint: bool(false, { origin: 'statsd', doc: 'the console backend prints with `util.inspect` (depth 5, colors)' }),
};

export const consoleSection = section(CONSOLE_FIELDS, { origin: 'statsd', doc: 'statsd\'s console backend settings' });

export const HTTP_FIELDS = {
  port: port(8127, { doc: 'the HTTP server\'s port (`/healthz`, `/readyz`, `/metrics`, `/api/*`, the status page); 0 picks a free one (logged, `"msg":"http listening"`). The whole `http` section is off when absent: no HTTP listener, as statsd' }),
  address: str('127.0.0.1', { nonEmpty: true, doc: 'the HTTP server\'s bind address' }),
  historyMaxBytes: count(32 * 1024 * 1024, {
    doc: 'bytes of Graphite lines of the recent committed periods kept in Redis for `/api/names` and `/api/series` (32 MiB; Redis holds '
      + '~1.6-1.8x that); the oldest periods beyond it are deleted, a period larger than all of it is not kept (`tallyd_history_skipped_total`). With '
      + 'several shards each keeps its share, `historyMaxBytes / redis.shards`',
  }),
  historyPeriods: int(360, 1, 100000, 'an integer number of periods from 1 to 100000', {
    doc: 'most committed periods kept for `/api/names` and `/api/series` (one hour at `flushInterval` 10000)',
  }),
};

/** What each key of an `http` section defaults to (the section itself is off when absent). */
export const DEFAULT_HTTP: Resolved<typeof HTTP_FIELDS> = Object.freeze(defaultsOf(HTTP_FIELDS));

const httpOn = section(HTTP_FIELDS, { doc: 'the HTTP server (docs/operations.md, "HTTP")' });

/** `http`: absent or null means no HTTP server (statsd has none); an object turns it on, each key defaulting as above. */
export const httpSection: Field<Resolved<typeof HTTP_FIELDS> | null> = {
  ...httpOn,
  default: null,
  defaultText: 'absent (off)',
  read: (c, o, k, p, done) => (o[k] === undefined || o[k] === null ? null : httpOn.read(c, o, k, p, done)),
};
