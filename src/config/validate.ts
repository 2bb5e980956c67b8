/**
 * Raw merged settings -> Config. Every key is checked; problems are collected
 * (never thrown one by one) and returned with the warnings about statsd keys
 * tallyd accepts but ignores. Absent keys take their default from DEFAULTS,
 * with statsd's own resolution rules (deleteIdleStats, gaugesMaxTTL, ...).
 */

import { Checker, type OriginOf, type Raw } from './checker.js';
import { DEFAULT_GRAPHITE, DEFAULT_HTTP, defaultBatchInterval, DEFAULTS, LOG_LEVELS } from './defaults.js';
import type { ConfigProblem } from './errors.js';
import {
  CONSOLE_KEYS, describe, GRAPHITE_KEYS, HTTP_KEYS, LOG_KEYS, REDIS_KEYS, SYSLOG_LEVELS, TOP_LEVEL_KEYS, UNIMPLEMENTED_LOG, UNIMPLEMENTED_TOP_LEVEL,
} from './keys.js';
import { redactUrl } from './redact.js';
import type { Config, GraphiteConfig, HttpConfig, LogConfig, RedisConfig } from './types.js';
import { checkBackends, readHistogram, readPercentThreshold, readServers, readTimerMetrics } from './validate-lists.js';

export interface Validated {
  /** The resolved config, or null when there are problems. */
  readonly config: Config | null;
  readonly problems: ReadonlyArray<ConfigProblem>;
  readonly warnings: ReadonlyArray<ConfigProblem>;
}

function checkTopLevel(c: Checker, raw: Raw, otherBackends: ReadonlyArray<string>): void {
  // Settings that match what tallyd does anyway need no warning.
  const known = [...TOP_LEVEL_KEYS];
  if (raw['debug'] === false) known.push('debug');
  if (raw['automaticConfigReload'] === false) known.push('automaticConfigReload');
  const lenient = otherBackends.length === 0 ? undefined
    : (): string => `unknown key, ignored (perhaps a setting of ${otherBackends.map(describe).join(' or ')}, not loaded by tallyd)`;
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

function readGraphite(c: Checker, raw: Raw): GraphiteConfig {
  const g = c.section(raw, 'graphite', '');
  c.keys(g, 'graphite', GRAPHITE_KEYS);
  const p = 'graphite';
  const d = DEFAULT_GRAPHITE;
  return {
    legacyNamespace: c.bool(g, 'legacyNamespace', p, d.legacyNamespace),
    globalPrefix: c.str(g, 'globalPrefix', p, d.globalPrefix),
    prefixCounter: c.str(g, 'prefixCounter', p, d.prefixCounter),
    prefixTimer: c.str(g, 'prefixTimer', p, d.prefixTimer),
    prefixGauge: c.str(g, 'prefixGauge', p, d.prefixGauge),
    prefixSet: c.str(g, 'prefixSet', p, d.prefixSet),
    globalSuffix: c.str(g, 'globalSuffix', p, d.globalSuffix),
  };
}

function readRedis(c: Checker, raw: Raw): RedisConfig {
  const r = c.section(raw, 'redis', '');
  c.keys(r, 'redis', REDIS_KEYS);
  let url = c.str(r, 'url', 'redis', DEFAULTS.redis.url);
  if (!/^rediss?:\/\/./.test(url)) {
    c.problem('redis.url', `must start with redis:// or rediss://, got ${describe(redactUrl(url))}`);
    url = DEFAULTS.redis.url;
  } else if (!URL.canParse(url)) {
    c.problem('redis.url', `is not a valid URL (percent-encode @ / : ? # in a password as %40 %2F %3A %3F %23), got ${describe(redactUrl(url))}`);
    url = DEFAULTS.redis.url;
  }
  const keyPrefix = c.str(r, 'keyPrefix', 'redis', DEFAULTS.redis.keyPrefix);
  if (/[{}]/.test(keyPrefix)) c.problem('redis.keyPrefix', `must not contain { or } (tallyd adds the hash tag), got ${describe(keyPrefix)}`);
  const commandTimeout = c.millis(r, 'commandTimeout', 'redis', DEFAULTS.redis.commandTimeout);
  return { url, keyPrefix, commandTimeout };
}

function readLog(c: Checker, raw: Raw): LogConfig {
  const l = c.section(raw, 'log', '');
  c.keys(l, 'log', LOG_KEYS, UNIMPLEMENTED_LOG);
  const level = l['level'];
  const syslog = typeof level === 'string' && Object.hasOwn(SYSLOG_LEVELS, level) ? SYSLOG_LEVELS[level] : undefined;
  if (syslog !== undefined) {
    c.warn('log.level', `statsd's syslog level ${describe(level)} is read as pino level "${syslog}"`);
    return { level: syslog };
  }
  return { level: c.oneOf(l, 'level', 'log', DEFAULTS.log.level, LOG_LEVELS) };
}

/** `http`: absent or null means no HTTP server (statsd has none). */
function readHttp(c: Checker, raw: Raw): HttpConfig | null {
  if (raw['http'] === undefined || raw['http'] === null) return null;
  const h = c.section(raw, 'http', '');
  c.keys(h, 'http', HTTP_KEYS);
  const d = DEFAULT_HTTP;
  return {
    port: c.port(h, 'port', 'http', d.port),
    address: c.str(h, 'address', 'http', d.address, true),
    historyMaxBytes: c.count(h, 'historyMaxBytes', 'http', d.historyMaxBytes),
    historyPeriods: c.int(h, 'historyPeriods', 'http', d.historyPeriods, 1, 100000, 'an integer number of periods from 1 to 100000'),
  };
}

function readGraphiteTarget(c: Checker, raw: Raw): Pick<Config, 'graphiteHost' | 'graphitePort' | 'graphiteProtocol' | 'graphitePicklePort'> {
  const host = raw['graphiteHost'];
  const graphiteHost = host === undefined || host === null ? null : c.str(raw, 'graphiteHost', '', '', true) || null;
  return {
    graphiteHost,
    graphitePort: c.port(raw, 'graphitePort', '', DEFAULTS.graphitePort, 1),
    graphiteProtocol: c.oneOf(raw, 'graphiteProtocol', '', DEFAULTS.graphiteProtocol, ['text', 'pickle']),
    graphitePicklePort: c.port(raw, 'graphitePicklePort', '', DEFAULTS.graphitePicklePort, 1),
  };
}

function readConsole(c: Checker, raw: Raw): Config['console'] {
  const s = c.section(raw, 'console', '');
  c.keys(s, 'console', CONSOLE_KEYS);
  return { prettyprint: c.bool(s, 'prettyprint', 'console', DEFAULTS.console.prettyprint) };
}

/** statsd forces gaugesMaxTTL to 1 unless it is an integer > 1; a non-number is an error here. */
function readGaugesMaxTTL(c: Checker, raw: Raw): number {
  const ttl = raw['gaugesMaxTTL'];
  if (ttl === undefined) return DEFAULTS.gaugesMaxTTL;
  if (typeof ttl !== 'number' || Number.isNaN(ttl)) {
    c.problem('gaugesMaxTTL', `must be an integer number of flushes, got ${describe(ttl)}`);
    return DEFAULTS.gaugesMaxTTL;
  }
  if (Number.isInteger(ttl) && ttl > 1) return ttl;
  if (ttl !== 1) c.warn('gaugesMaxTTL', `${describe(ttl)} is not an integer > 1, so 1 is used (as in statsd)`);
  return 1;
}

export function validate(raw: Raw, source: string | null, originOf: OriginOf): Validated {
  const c = new Checker(originOf);
  const strictConfig = c.bool(raw, 'strictConfig', '', DEFAULTS.strictConfig);
  c.strict = strictConfig;
  const { backends, others: otherBackends } = checkBackends(c, raw);
  checkTopLevel(c, raw, otherBackends);

  const flushInterval = c.millis(raw, 'flushInterval', '', DEFAULTS.flushInterval);
  const batchInterval = c.millis(raw, 'batchInterval', '', defaultBatchInterval(flushInterval));
  if (batchInterval >= flushInterval && raw['batchInterval'] !== undefined) {
    c.problem('batchInterval', `must be less than flushInterval (${flushInterval}), got ${batchInterval}`);
  } else if (batchInterval >= flushInterval) {
    c.problem('flushInterval', `must be greater than batchInterval (${batchInterval}), got ${flushInterval}`);
  }

  // statsd's stats.js: deleteIdleStats turns on every delete* that is not set explicitly.
  const deleteIdleStats = c.bool(raw, 'deleteIdleStats', '', DEFAULTS.deleteIdleStats);
  const del = (key: 'deleteCounters' | 'deleteTimers' | 'deleteGauges' | 'deleteSets'): boolean =>
    c.bool(raw, key, '', deleteIdleStats);

  const config: Config = {
    source,
    servers: readServers(c, raw),
    mgmt_address: c.str(raw, 'mgmt_address', '', DEFAULTS.mgmt_address, true),
    mgmt_port: c.port(raw, 'mgmt_port', '', DEFAULTS.mgmt_port),
    mgmtMaxConcurrent: c.count(raw, 'mgmtMaxConcurrent', '', DEFAULTS.mgmtMaxConcurrent),
    mgmtAllowRemoteChanges: c.bool(raw, 'mgmtAllowRemoteChanges', '', DEFAULTS.mgmtAllowRemoteChanges),
    maxConnections: c.count(raw, 'maxConnections', '', DEFAULTS.maxConnections),
    tcpIdleTimeout: c.millis(raw, 'tcpIdleTimeout', '', DEFAULTS.tcpIdleTimeout),
    ...readGraphiteTarget(c, raw),
    backends,
    console: readConsole(c, raw),
    graphite: readGraphite(c, raw),
    flushInterval,
    percentThreshold: readPercentThreshold(c, raw),
    histogram: readHistogram(c, raw),
    calculatedTimerMetrics: readTimerMetrics(c, raw),
    deleteIdleStats,
    deleteCounters: del('deleteCounters'),
    deleteTimers: del('deleteTimers'),
    deleteGauges: del('deleteGauges'),
    deleteSets: del('deleteSets'),
    gaugesMaxTTL: readGaugesMaxTTL(c, raw),
    prefixStats: c.str(raw, 'prefixStats', '', DEFAULTS.prefixStats),
    keyNameSanitize: c.bool(raw, 'keyNameSanitize', '', DEFAULTS.keyNameSanitize),
    flush_counts: c.bool(raw, 'flush_counts', '', DEFAULTS.flush_counts),
    healthStatus: c.oneOf(raw, 'healthStatus', '', DEFAULTS.healthStatus, ['up', 'down']),
    dumpMessages: c.bool(raw, 'dumpMessages', '', DEFAULTS.dumpMessages),
    strictConfig,
    redis: readRedis(c, raw),
    batchInterval,
    leaseTtl: c.millis(raw, 'leaseTtl', '', DEFAULTS.leaseTtl),
    stopTimeout: c.millis(raw, 'stopTimeout', '', DEFAULTS.stopTimeout),
    outboxMaxBytes: c.count(raw, 'outboxMaxBytes', '', DEFAULTS.outboxMaxBytes),
    carbonWriteTimeout: c.millis(raw, 'carbonWriteTimeout', '', DEFAULTS.carbonWriteTimeout),
    maxPendingBatches: c.count(raw, 'maxPendingBatches', '', DEFAULTS.maxPendingBatches),
    maxBatchNames: c.count(raw, 'maxBatchNames', '', DEFAULTS.maxBatchNames),
    workers: c.int(raw, 'workers', '', DEFAULTS.workers, 1, 64, 'an integer number of processes from 1 to 64'),
    flushNice: c.int(raw, 'flushNice', '', DEFAULTS.flushNice, 0, 19, 'an integer niceness from 0 to 19'),
    log: readLog(c, raw),
    http: readHttp(c, raw),
  };
  return {
    config: c.problems.length === 0 ? config : null,
    problems: inKeyOrder(raw, c.problems),
    warnings: inKeyOrder(raw, c.warnings),
  };
}
