/**
 * docs/config.md is rendered from the config declarations: it must be
 * committed as rendered, and it must name every key the loader accepts.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import { renderConfigDocs } from '../../src/config/docs.js';
import { GRAPHITE_KEYS, LOG_KEYS, REDIS_KEYS, TOP_LEVEL_KEYS, ZMQ_SERVER_KEYS } from '../../src/config/keys.js';

const committed = readFileSync(new URL('../../docs/config.md', import.meta.url), 'utf8');

test('docs/config.md is up to date with src/config/schema.ts (run `npm run docs:config`)', () => {
  assert.equal(committed, renderConfigDocs());
});

test('every accepted key is documented', () => {
  const documented = (key: string): boolean => committed.includes(`\`${key}\``);
  const missing = [
    ...TOP_LEVEL_KEYS.filter((k) => !['server', 'address', 'address_ipv6', 'port', 'maxPacketSize', 'recvBufferSize', 'udpReader',
      'redis', 'graphite', 'log', 'console'].includes(k)).filter((k) => !documented(k)),
    ...GRAPHITE_KEYS.map((k) => `graphite.${k}`).filter((k) => !documented(k)),
    ...REDIS_KEYS.map((k) => `redis.${k}`).filter((k) => !documented(k)),
    ...LOG_KEYS.map((k) => `log.${k}`).filter((k) => !documented(k)),
    ...ZMQ_SERVER_KEYS.filter((k) => k !== 'server').map((k) => `servers[].${k}`).filter((k) => !documented(k)),
  ];
  assert.deepEqual(missing, []);
});
