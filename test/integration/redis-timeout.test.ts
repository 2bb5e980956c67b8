/**
 * redis.commandTimeout: a Redis that hangs without failing (SIGSTOP, the
 * connection stays up) for longer than the bound, under traffic. Each
 * timeout is counted (redis_timeouts, emitted like any self-metric) and
 * logged naming the setting; the timed-out batches are kept and retried, and
 * nothing is lost: the exact total arrives at Carbon.
 */
import assert from 'node:assert/strict';
import dgram from 'node:dgram';
import { Writable } from 'node:stream';
import { after, describe, test } from 'node:test';
import { loadConfig } from '../../src/config/load.js';
import { Daemon } from '../../src/daemon.js';
import { createLogger } from '../../src/observability/logger.js';
import { CarbonListener, sleep } from '../helpers/carbon.js';
import { testPrefix } from '../helpers/redis.js';
import { RedisServer } from '../helpers/redis-server.js';
import { testConfig } from '../helpers/tallyd.js';

const COMMAND_TIMEOUT_MS = 300;
const PAUSE_MS = 1500;

describe('redis.commandTimeout', () => {
  let redis: RedisServer | null = null;
  const carbon = new CarbonListener();
  let daemon: Daemon | null = null;

  after(async () => {
    redis?.resume();
    await daemon?.stop();
    await carbon.stop();
    await redis?.stop();
  });

  test('a paused redis: timeouts counted and logged, the batches retried, the exact total delivered', async () => {
    redis = await RedisServer.start();
    await carbon.start();
    const prefix = testPrefix('cmdtimeout');
    const raw = testConfig(prefix, carbon.port, {
      servers: [{ server: 'udp', address: '127.0.0.1', port: 0 }],
      redis: { url: redis.url, keyPrefix: prefix, commandTimeout: COMMAND_TIMEOUT_MS },
      leaseTtl: 5000,
      log: { level: 'warn' },
    });
    const { config } = loadConfig({ file: null, env: {}, overrides: raw });
    let logText = '';
    const logSink = new Writable({
      write(chunk: Buffer, _enc, cb) {
        logText += chunk.toString();
        process.stderr.write(chunk);
        cb();
      },
    });
    daemon = new Daemon(config, createLogger('warn', logSink));
    await daemon.start();
    const d = daemon;
    const port = d.ports.udp[0]!;

    // Steady traffic: one counter increment every 10 ms, before, during and after the pause.
    const sock = dgram.createSocket('udp4');
    let sent = 0;
    let sending = true;
    const traffic = (async () => {
      while (sending) {
        await new Promise<void>((r, j) => sock.send('timeout.hits:1|c', port, '127.0.0.1', (e) => (e ? j(e) : r())));
        sent++;
        await sleep(10); // pacing the traffic, not waiting for a result
      }
    })();

    await carbon.waitFor(() => carbon.sum('stats_counts.timeout.hits') > 0, 10_000, 'a first period at carbon');
    redis.pause();
    await sleep(PAUSE_MS); // the fault itself lasts this long; everything after waits on conditions
    redis.resume();
    await carbon.waitFor(() => d.self.batchesMerged > 0 && d.batcher!.backlog === 0, 10_000, 'the kept batches merged after SIGCONT');
    sending = false;
    await traffic;
    sock.close();

    await carbon.waitFor(() => carbon.sum('stats_counts.timeout.hits') >= sent, 15_000, `all ${sent} increments at carbon`);
    assert.equal(d.self.udpKernelDrops, 0, 'no datagram dropped by the kernel');
    assert.equal(d.self.packetsReceived, sent);
    assert.ok(d.self.redisTimeouts > 0, `timeouts counted (${d.self.redisTimeouts})`);
    assert.equal(d.self.batchesDropped, 0, 'a timed-out merge is retried, never dropped as rejected');
    assert.match(logText, /"commandTimeout":300,.*"msg":"redis did not answer within redis.commandTimeout \(300 ms\)/);

    // The self-metric reaches Carbon like any counter: once the counts stop moving, the totals agree.
    await carbon.waitFor(
      () => carbon.sum('stats_counts.statsd.redis_timeouts') === d.self.redisTimeouts,
      15_000,
      'stats_counts.statsd.redis_timeouts = SelfStats.redisTimeouts',
    );
    // Two more periods committed: nothing doubled, nothing late (a timed-out merge that ran is a duplicate on retry).
    const lastTs = Math.max(...carbon.lines.map((l) => l.ts));
    await carbon.waitFor(() => carbon.lines.some((l) => l.ts >= lastTs + (2 * config.flushInterval) / 1000), 15_000, 'two more periods');
    assert.equal(carbon.sum('stats_counts.timeout.hits'), sent, 'exactly once');
    assert.equal(carbon.sum('stats_counts.statsd.redis_timeouts'), d.self.redisTimeouts);
    assert.equal(d.self.lateSamples, 0, 'no sample late');
  });
});
