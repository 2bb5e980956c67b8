/**
 * The Carbon sink on real sockets with an injected clock: a delivery is
 * acknowledged only once carbon read to our EOF and closed; a stalled carbon
 * is dropped after carbonWriteTimeout of clock time; failures back off
 * 100 ms, 200 ms, ... and are counted; stop() never waits out a backoff.
 */
import assert from 'node:assert/strict';
import net from 'node:net';
import { describe, it } from 'node:test';
import type { Clock } from '../../src/clock.js';
import { createLogger } from '../../src/observability/logger.js';
import { SelfStats } from '../../src/observability/self-stats.js';
import { CarbonSink, type OutboxStore } from '../../src/sink/graphite/carbon.js';
import { deliver } from '../../src/sink/graphite/deliver.js';
import { SinkError } from '../../src/sink/errors.js';
import type { OutboxEntry } from '../../src/store/store.js';
import { freePort, sleep } from '../helpers/carbon.js';

const log = createLogger('silent');

class ManualClock implements Clock {
  private t = 0;
  private readonly timers = new Map<object, { at: number; fn: () => void }>();
  now(): number {
    return this.t;
  }
  setTimeout(fn: () => void, ms: number): NodeJS.Timeout {
    const h = {};
    this.timers.set(h, { at: this.t + ms, fn });
    return h as NodeJS.Timeout;
  }
  clearTimeout(h: NodeJS.Timeout): void {
    this.timers.delete(h);
  }
  advance(ms: number): void {
    this.t += ms;
    for (const [h, x] of [...this.timers]) {
      if (x.at <= this.t && this.timers.delete(h)) x.fn();
    }
  }
}

async function waitUntil(pred: () => boolean, what: string, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!pred()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(5);
  }
}

async function server(onConn: (s: net.Socket) => void): Promise<{ port: number; close: () => void; conns: net.Socket[] }> {
  const conns: net.Socket[] = [];
  const srv = net.createServer((s) => {
    conns.push(s);
    s.on('error', () => undefined);
    onConn(s);
  });
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', () => r()));
  return {
    port: (srv.address() as net.AddressInfo).port,
    conns,
    close: () => {
      for (const c of conns) c.destroy();
      srv.close();
    },
  };
}

const payload = [Buffer.from('a.b 1 1700000000\n'.repeat(100))];

describe('deliver', () => {
  it('resolves once carbon read to our EOF and closed (our socket in TIME_WAIT)', async () => {
    let got = 0;
    const s = await server((c) => c.on('data', (d: Buffer) => void (got += d.length)));
    try {
      await deliver({ host: '127.0.0.1', port: s.port }, payload, 5000, new ManualClock()).done;
      assert.equal(got, payload[0]?.length);
    } finally {
      s.close();
    }
  });

  it('rejects when the close does not prove everything was read', async () => {
    const s = await server((c) => c.resume());
    try {
      await assert.rejects(deliver({ host: '127.0.0.1', port: s.port }, payload, 5000, new ManualClock(), () => 'unproven').done, (e: unknown) => e instanceof SinkError && e.code === 'EUNREAD');
    } finally {
      s.close();
    }
  });

  it('rejects on a reset after part of the payload', async () => {
    const s = await server((c) => c.once('data', () => c.resetAndDestroy()));
    try {
      await assert.rejects(deliver({ host: '127.0.0.1', port: s.port }, [Buffer.alloc(4 << 20, 0x41)], 5000, new ManualClock()).done, /ECONNRESET|EPIPE/);
    } finally {
      s.close();
    }
  });

  it('drops a carbon that accepts and never reads after carbonWriteTimeout of clock time', async () => {
    const s = await server((c) => c.pause());
    const clock = new ManualClock();
    try {
      const d = deliver({ host: '127.0.0.1', port: s.port }, payload, 10_000, clock);
      let settled = false;
      d.done.catch(() => undefined).finally(() => void (settled = true));
      await waitUntil(() => s.conns.length === 1, 'the connection');
      await sleep(20); // let the writes reach the kernel (real time; the deadline is clock time)
      clock.advance(9_999);
      await sleep(20); // a chance for a wrong early timeout to show: an absence has no condition to wait on
      assert.equal(settled, false, 'still waiting before carbonWriteTimeout');
      clock.advance(1);
      await assert.rejects(d.done, (e: unknown) => e instanceof SinkError && e.code === 'ETIMEOUT' && /carbonWriteTimeout 10000 ms/.test(e.message));
    } finally {
      s.close();
    }
  });
});

describe('CarbonSink', () => {
  it('backs off 100 ms, 200 ms, ... of clock time between failed deliveries, counts each, and stops at once', async () => {
    const port = await freePort(); // nothing listens: every connect is refused
    const clock = new ManualClock();
    let claims = 0;
    const acks: string[] = [];
    const entry: OutboxEntry = { id: '1-0', data: 'x 1 1\n', lines: 1, bytes: 6 };
    const store: OutboxStore = {
      claimOutbox: () => {
        claims++;
        return Promise.resolve([entry]);
      },
      ackOutbox: (_t, _s, id) => {
        acks.push(id);
        return Promise.resolve(1);
      },
      outboxStats: () => Promise.resolve({ entries: 1, bytes: 6, oldestMs: 0 }),
    };
    const self = new SelfStats();
    const sink = new CarbonSink({ host: '127.0.0.1', port }, store, () => 'token', self, log, { protocol: 'text', writeTimeoutMs: 10_000, clock });
    sink.start();
    try {
      await waitUntil(() => self.carbonErrors === 1, 'the first failure');
      clock.advance(99);
      await sleep(20); // a chance for a wrong early retry to show: an absence has no condition to wait on
      assert.equal(claims, 1, 'no retry before 100 ms');
      clock.advance(1);
      await waitUntil(() => self.carbonErrors === 2, 'the second failure');
      assert.equal(claims, 2);
      clock.advance(199);
      await sleep(20); // as above
      assert.equal(claims, 2, 'no retry before 200 ms');
      clock.advance(1);
      await waitUntil(() => self.carbonErrors === 3, 'the third failure');
      assert.deepEqual(acks, [], 'nothing acknowledged');
      assert.ok(self.graphite.last_exception >= 0);
    } finally {
      // stop(0) returns without the clock moving: it never waits out the 400 ms backoff.
      await sink.stop(0);
    }
  });

  it('acknowledges the last delivered id once carbon read everything', async () => {
    const lines: string[] = [];
    const s = await server((c) => {
      c.setEncoding('utf8');
      c.on('data', (d: string) => lines.push(...d.split('\n').filter(Boolean)));
    });
    const entries: OutboxEntry[] = [
      { id: '5-0', data: 'a 1 1\n', lines: 1, bytes: 6 },
      { id: '5-1', data: 'b 2 1\nc 3 1\n', lines: 2, bytes: 12 },
    ];
    let pending = [...entries];
    const acks: string[] = [];
    const store: OutboxStore = {
      claimOutbox: () => Promise.resolve(pending),
      ackOutbox: (_t, _s, id) => {
        acks.push(id);
        pending = [];
        return Promise.resolve(1);
      },
      outboxStats: () => Promise.resolve({ entries: pending.length, bytes: 0, oldestMs: null }),
    };
    const self = new SelfStats();
    const sink = new CarbonSink({ host: '127.0.0.1', port: s.port }, store, () => 'token', self, log, { protocol: 'text', writeTimeoutMs: 10_000 });
    sink.start();
    try {
      await waitUntil(() => acks.length === 1, 'the ack');
      assert.deepEqual(acks, ['5-1']);
      assert.deepEqual(lines, ['a 1 1', 'b 2 1', 'c 3 1']);
      assert.equal(self.linesSent, 3);
      assert.equal(self.carbonErrors, 0);
    } finally {
      await sink.stop(1000);
      s.close();
    }
  });
});
