/** Environment variable -> dotted config key; later entries win (TALLYD_REDIS_URL over REDIS_URL). */
export const ENV_KEYS: ReadonlyArray<readonly [string, string]> = [
  ['REDIS_URL', 'redis.url'],
  ['TALLYD_REDIS_URL', 'redis.url'],
  ['TALLYD_REDIS_KEY_PREFIX', 'redis.keyPrefix'],
  ['TALLYD_REDIS_PASSWORD', 'redis.password'],
  ['TALLYD_FLUSH_INTERVAL', 'flushInterval'],
  ['TALLYD_LOG_LEVEL', 'log.level'],
];
