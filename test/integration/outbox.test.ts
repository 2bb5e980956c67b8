/**
 * The outbox contract (DESIGN invariant 8), against the real Redis and a real
 * socket: entries are acknowledged by id (a repeated or older ack changes
 * nothing), and the byte bound, reached while a delivery is in flight, drops
 * exactly what it counts: no claimed entry is both delivered and dropped.
 */
import assert from 'node:assert/strict';
import net from 'node:net';
import { after, before, describe, test } from 'node:test';
import { Batch } from '../../src/aggregate/batch.js';
import { encodeMerge } from '../../src/aggregate/merge-args.js';
import { createLogger } from '../../src/observability/logger.js';
import { SelfStats } from '../../src/observability/self-stats.js';
import { CarbonSink } from '../../src/sink/graphite/carbon.js';
import { OUTBOX_READER } from '../../src/store/keys.js';
import { Store, type OutboxEntry } from '../../src/store/store.js';
import { sleep } from '../helpers/carbon.js';
import { outboxEntries } from '../helpers/outbox.js';
import { cleanup, REDIS_URL, testPrefix } from '../helpers/redis.js';

const log = createLogger('silent');
const TOKEN = 'outbox-test-token';

/** Unique lines: `ob.e<entry>.l<line> <line> <entry>`. */
function entryText(entry: number, lines: number): string {
  let s = '';
  for (let j = 0; j < lines; j++) s += `ob.e${entry}.l${j} ${j} ${entry}\n`;
  return s;
}

let nextTs = 1_000_000;
/** Commits chunks as one period (close + commit, as the flusher does). */
async function commitChunks(store: Store, chunks: string[], outboxMaxBytes: number): Promise<{ droppedLines: number; droppedBytes: number }> {
  const ts = (nextTs += 1000);
  assert.deepEqual(await store.closePeriod(TOKEN, ts, 3000, 0), { status: 'closed' });
  const res = await store.commit(TOKEN, ts, { chunks, gaugeTtl: [], gaugeDeletes: [], outboxMaxBytes });
  assert.equal(res.status, 1);
  return res;
}

async function waitUntil(pred: () => boolean | Promise<boolean>, timeoutMs: number, what: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await pred())) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(20);
  }
}

describe('outbox', () => {
  const prefix = testPrefix('outbox');
  let store: Store;

  before(async () => {
    store = await Store.open({ url: REDIS_URL, keyPrefix: prefix }, log);
    assert.equal(await store.tryAcquireLease(TOKEN, 120_000), 2);
  });
  after(async () => {
    await store.quit();
    await cleanup(prefix);
  });

  test('entries carry their text, line and byte counts; merge adds passthrough lines the same way', async () => {
    await commitChunks(store, [entryText(1, 3)], 1 << 30);
    const batch = new Batch();
    batch.passthrough('pt.a 1 1700000000');
    batch.passthrough('pt.b 2 1700000000');
    // Into a period far ahead of the ones these tests close; the member leaves at once, so it holds no close.
    assert.deepEqual(await store.merge('ob:1', 9e12, 'ob', 9e12 + 1000, encodeMerge(batch)), { status: 'merged' });
    await store.leave('ob');
    const entries = await outboxEntries(store);
    assert.deepEqual(entries.map((e) => [e.n, e.b]), [[3, entryText(1, 3).length], [2, 36]]);
    assert.equal(entries[1]?.d, 'pt.a 1 1700000000\npt.b 2 1700000000\n');
    const stats = await store.outboxStats();
    assert.deepEqual([stats.entries, stats.bytes], [2, entryText(1, 3).length + 36]);
    assert.ok(stats.oldestMs !== null && Math.abs(stats.oldestMs - Date.now()) < 60_000, 'oldest entry added just now');
    // Deliver both (claim + ack), leaving it empty for the next tests.
    const got = await store.claimOutbox(TOKEN, OUTBOX_READER, 1 << 20, 100);
    assert.equal(got?.length, 2);
    assert.equal(await store.ackOutbox(TOKEN, OUTBOX_READER, got?.[1]?.id ?? ''), 1);
    assert.deepEqual(await store.outboxStats(), { entries: 0, bytes: 0, oldestMs: null });
  });

  test('an ack names an id: repeating it, or an older one, changes nothing; newer entries stay', async () => {
    for (let e = 10; e < 14; e++) await commitChunks(store, [entryText(e, 5)], 1 << 30);
    const size = entryText(10, 5).length;
    // A read of two entries (by bytes) is claimed; two more were committed after it.
    const got = (await store.claimOutbox(TOKEN, OUTBOX_READER, 2 * size, 100)) ?? [];
    assert.equal(got.length, 2);
    const [first, second] = got as [OutboxEntry, OutboxEntry, ...OutboxEntry[]];
    assert.equal(await store.ackOutbox(TOKEN, OUTBOX_READER, second.id), 1);
    const left = await store.outboxStats();
    assert.deepEqual([left.entries, left.bytes], [2, 2 * size]);
    assert.equal(await store.ackOutbox(TOKEN, OUTBOX_READER, second.id), 0, 'a repeated ack');
    assert.equal(await store.ackOutbox(TOKEN, OUTBOX_READER, first.id), 0, 'an older ack');
    assert.equal(await store.ackOutbox('someone-else', OUTBOX_READER, '9999999999999-0'), -1, 'not the leader');
    assert.deepEqual(await store.outboxStats(), left, 'nothing changed');
    assert.equal(await store.redis.get(store.keys.outboxClaim(OUTBOX_READER)), null, 'the delivered claim is cleared');
    // The next read starts after the cursor.
    const rest = (await store.claimOutbox(TOKEN, OUTBOX_READER, 1 << 20, 100)) ?? [];
    assert.deepEqual(rest.map((e) => e.data), [entryText(12, 5), entryText(13, 5)]);
    assert.equal(await store.ackOutbox(TOKEN, OUTBOX_READER, rest[1]?.id ?? ''), 1);
    assert.deepEqual(await store.outboxStats(), { entries: 0, bytes: 0, oldestMs: null });
  });

  test('the bound reached while a delivery is in flight: lines that never reach carbon == outbox_dropped, exactly', async () => {
    const LINES = 40;
    const size = entryText(100, LINES).length;
    const committed = new Set<string>();
    const commitEntry = async (e: number, bound: number) => {
      const text = entryText(e, LINES);
      for (const l of text.split('\n')) if (l) committed.add(l);
      return commitChunks(store, [text], bound);
    };
    for (let e = 100; e < 103; e++) await commitEntry(e, 1 << 30);

    // A carbon that holds its connections unread until released, then reads them to the end.
    const received = new Set<string>();
    let holding = true;
    const held: net.Socket[] = [];
    let accepted = 0;
    const carbon = net.createServer((sock) => {
      accepted++;
      let rest = '';
      if (holding) {
        sock.pause();
        held.push(sock);
      }
      sock.setEncoding('utf8');
      sock.on('data', (d: string) => {
        rest += d;
        let i: number;
        while ((i = rest.indexOf('\n')) !== -1) {
          received.add(rest.slice(0, i));
          rest = rest.slice(i + 1);
        }
      });
      sock.on('error', () => undefined);
    });
    await new Promise<void>((r) => carbon.listen(0, '127.0.0.1', () => r()));
    const port = (carbon.address() as net.AddressInfo).port;
    const self = new SelfStats();
    // Each delivery reads two entries.
    const sink = new CarbonSink({ host: '127.0.0.1', port }, store, () => TOKEN, self, log, { protocol: 'text', writeTimeoutMs: 30_000, readBytes: 2 * size });
    sink.start();
    try {
      await waitUntil(async () => accepted > 0 && (await store.redis.get(store.keys.outboxClaim(OUTBOX_READER))) !== null, 10_000, 'a delivery in flight');
      const claimed = (await outboxEntries(store)).slice(0, 2).map((e) => e.d);
      // Commits past the bound (three entries' worth) while those two entries are being written.
      let droppedLines = 0;
      let droppedBytes = 0;
      for (let e = 103; e < 110; e++) {
        const r = await commitEntry(e, 3 * size);
        droppedLines += r.droppedLines;
        droppedBytes += r.droppedBytes;
      }
      assert.ok(droppedLines > 0, 'the bound dropped lines');
      const kept = await outboxEntries(store);
      assert.deepEqual(kept.slice(0, 2).map((e) => e.d), claimed, 'the claimed entries were not trimmed');
      assert.equal((await store.outboxStats()).bytes, kept.reduce((n, e) => n + e.b, 0));
      // Carbon reads again: the delivery in flight completes, then the rest drains.
      holding = false;
      for (const s of held) s.resume();
      await waitUntil(async () => (await store.outboxStats()).entries === 0, 20_000, 'the outbox drained');
      for (const l of claimed.join('').split('\n')) if (l) assert.ok(received.has(l), `claimed line ${l} delivered`);
      for (const l of received) assert.ok(committed.has(l), `carbon got only committed lines (${l})`);
      const neverArrived = [...committed].filter((l) => !received.has(l));
      assert.equal(neverArrived.length, droppedLines, 'lines that never reached carbon == outbox_dropped');
      assert.equal(neverArrived.reduce((n, l) => n + l.length + 1, 0), droppedBytes, 'and their bytes == outbox_dropped_bytes');
      assert.equal(self.carbonErrors, 0);
    } finally {
      await sink.stop(1000);
      for (const s of held) s.destroy();
      carbon.close();
    }
  });
});
