/**
 * The HTTP server against a real tallyd (a child process), a real Redis and a
 * Carbon listener: /healthz, 404 and 405; no listener when `http` is absent.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { CarbonListener } from '../helpers/carbon.js';
import { httpGet } from '../helpers/http.js';
import { cleanup, testPrefix } from '../helpers/redis.js';
import { spawnTallyd, startDaemon, testConfig, waitForHttpPort, type ChildTallyd } from '../helpers/tallyd.js';

const HTTP = { http: { port: 0, address: '127.0.0.1' }, log: { level: 'info' } };

describe('http server', () => {
  const prefix = testPrefix('http');
  const carbon = new CarbonListener();
  let child: ChildTallyd;
  let port = 0;

  before(async () => {
    await carbon.start();
    child = spawnTallyd(testConfig(prefix, carbon.port, HTTP));
    port = await waitForHttpPort(child);
  });
  after(async () => {
    child?.proc.kill('SIGTERM');
    await child?.exited;
    await carbon.stop();
    await cleanup(prefix);
  });

  test('/healthz answers 200 ok', async () => {
    const a = await httpGet(port, '/healthz');
    assert.equal(a.status, 200);
    assert.equal(a.body, 'ok\n');
    const head = await httpGet(port, '/healthz', 'HEAD');
    assert.equal(head.status, 200);
    assert.equal(head.body, '');
  });

  test('unknown paths are 404 and other methods 405, with a JSON error', async () => {
    for (const path of ['/nope', '/index.htm', '/api/nothing']) {
      const a = await httpGet(port, path);
      assert.equal(a.status, 404, path);
      assert.match((JSON.parse(a.body) as { error: string }).error, /^not found: /);
    }
    for (const method of ['POST', 'PUT', 'DELETE']) {
      const a = await httpGet(port, '/healthz', method);
      assert.equal(a.status, 405, method);
      assert.match((JSON.parse(a.body) as { error: string }).error, /not allowed: GET or HEAD/);
    }
  });
});

describe('http absent from the config', () => {
  test('no HTTP listener (statsd has none)', async () => {
    const prefix = testPrefix('http-off');
    const daemon = await startDaemon(testConfig(prefix, null));
    try {
      assert.equal(daemon.ports.http, null);
      assert.equal(daemon.http, null);
    } finally {
      await daemon.stop();
      await cleanup(prefix);
    }
  });
});
