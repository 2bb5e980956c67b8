/**
 * A clean stop reads every datagram the kernel had already queued for a UDP
 * server's socket before closing it, with either reader: a burst that
 * arrived while the process was busy is counted, none of it lost with the
 * socket. The server is driven directly, so its stop() begins before this
 * process has read a single datagram of the burst.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { DEFAULT_SERVER } from '../../src/config/defaults.js';
import { UdpServer } from '../../src/ingest/udp.js';
import { nativeAddon } from '../../src/native/addon.js';
import { createLogger } from '../../src/observability/logger.js';
import { SelfStats } from '../../src/observability/self-stats.js';
import type { SampleSink } from '../../src/parse/sample-sink.js';
import { StatsdLineParser } from '../../src/parse/statsd-line.js';
import { floodWhileBlocked } from '../helpers/udp-flood.js';

const DATAGRAMS = 2000;

const readers: Array<'dgram' | 'native'> = ['dgram'];
if (typeof nativeAddon() !== 'string') readers.push('native');

class CountingSink implements SampleSink {
  counts = 0;
  counter(_name: string, value: number): void {
    this.counts += value;
  }
  gauge(): void {}
  timer(): void {}
  set(): void {}
}

describe('udp at a clean stop', () => {
  for (const reader of readers) {
    test(`every datagram queued when stop() begins is read (${reader} reader)`, async () => {
      const self = new SelfStats();
      const sink = new CountingSink();
      const server = new UdpServer(
        { ...DEFAULT_SERVER, address: '127.0.0.1', port: 0, udpReader: reader },
        new StatsdLineParser({ keyNameSanitize: true }),
        sink,
        self,
        createLogger('silent'),
      );
      const port = await server.start();
      assert.equal(server.reader, reader);
      floodWhileBlocked(port, DATAGRAMS, 'drain.hits:1|c');
      await server.stop(); // called in the same turn: nothing of the burst was read yet
      assert.equal(self.packetsReceived, DATAGRAMS, 'every queued datagram was read before the close');
      assert.equal(sink.counts, DATAGRAMS);
    });
  }
});
