/**
 * Secrets: the one redaction function hides a Redis password in every URL
 * spelling ioredis reads, and password-named keys anywhere in a config.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { loadConfig } from '../../src/config/load.js';
import { redactConfig, redactUrl } from '../../src/config/redact.js';

const PW = 'Hunter2secret';

describe('redactUrl', () => {
  const cases: ReadonlyArray<readonly [string, string, string]> = [
    ['no user', `redis://:${PW}@db:6379/0`, 'redis://:***@db:6379/0'],
    ['user and password', `redis://alice:${PW}@db`, 'redis://alice:***@db'],
    ['rediss', `rediss://alice:${PW}@db:6380`, 'rediss://alice:***@db:6380'],
    ['a password holding @', `redis://:${PW}@x@db`, 'redis://:***@db'],
    ['a password holding / and :', `redis://alice:${PW}/a:b@db:1/2`, 'redis://alice:***@db:1/2'],
    ['percent-encoded @ / :', `redis://alice:${PW}%40%2F%3A@db`, 'redis://alice:***@db'],
    ['?password=', `redis://db:6379/0?password=${PW}`, 'redis://db:6379/0?password=***'],
    ['&password= holding @', `redis://db?db=1&password=${PW}@x&family=4`, 'redis://db?db=1&password=***&family=4'],
    ['userinfo without a colon', `redis://${PW}@db`, 'redis://***@db'],
    ['?sentinelPassword= (ioredis reads it)', `redis://db?sentinelPassword=${PW}`, 'redis://db?sentinelPassword=***'],
  ];
  for (const [name, url, shown] of cases) {
    it(`hides the password: ${name}`, () => {
      const out = redactUrl(url);
      assert.equal(out, shown);
      assert.ok(!out.includes(PW) && !out.includes('Hunter2'), out);
    });
  }

  it('leaves a URL without a password alone', () => {
    assert.equal(redactUrl('redis://127.0.0.1:6379/2'), 'redis://127.0.0.1:6379/2');
    assert.equal(redactUrl('redis://alice@db'), 'redis://***@db'); // hides too much rather than too little
  });

  it('hides the password wherever else it appears in the URL', () => {
    assert.ok(!redactUrl(`redis://:${PW}@db/0?client=${PW}`).includes(PW));
  });
});

describe('redactConfig', () => {
  it('redacts URL strings and password-named keys at any depth, without changing the input', () => {
    const raw = { redis: { url: `redis://:${PW}@db`, password: PW, keyPrefix: 'p:' }, servers: [{ auth: PW }], port: 1 };
    assert.deepEqual(redactConfig(raw), {
      redis: { url: 'redis://:***@db', password: '***', keyPrefix: 'p:' }, servers: [{ auth: '***' }], port: 1,
    });
    assert.equal(raw.redis.password, PW);
  });

  it('a loaded config with a password in its URL prints without it', () => {
    const { config } = loadConfig({ file: null, env: {}, overrides: { redis: { url: `rediss://u:${PW}@db:6380/1?password=${PW}` } } });
    assert.equal(config.redis.url.includes(PW), true);
    assert.ok(!JSON.stringify(redactConfig(config)).includes(PW));
  });

  it('a loaded config with redis.password (a Redis Cluster with requirepass) prints without it', () => {
    const { config } = loadConfig({ file: null, env: {}, overrides: { redis: { nodes: ['h:7000'], username: 'tallyd', password: PW } } });
    assert.equal(config.redis.password, PW);
    const shown = redactConfig(config) as { redis: { username: string; password: string } };
    assert.deepEqual([shown.redis.username, shown.redis.password], ['tallyd', '***']);
    assert.ok(!JSON.stringify(shown).includes(PW));
  });

  it('config errors about redis.url never quote the password', () => {
    for (const url of [`http://u:${PW}@db`, `redis://u:${PW}/x@db`]) {
      assert.throws(() => loadConfig({ file: null, env: {}, overrides: { redis: { url } } }),
        (err: Error) => err.message.startsWith('overrides: redis.url: ') && !err.message.includes(PW));
    }
  });
});
