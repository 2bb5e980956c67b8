/**
 * The batcher's queue discipline, without Redis: a batch that fails on the
 * connection is retried in order; one Redis keeps rejecting is dropped and
 * counted after three tries instead of blocking every later batch.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Batcher, oneShard, type MergeTarget } from '../../src/aggregate/batcher.js';
import type { MergeArg } from '../../src/aggregate/merge-args.js';
import { createLogger } from '../../src/observability/logger.js';
import { SelfStats } from '../../src/observability/self-stats.js';
import type { MergeOutcome } from '../../src/store/store.js';
import { ManualClock } from '../helpers/manual-clock.js';
import { mergeText } from '../helpers/merge-text.js';

class ScriptedTarget implements MergeTarget {
  merged: string[] = [];
  constructor(private readonly fail: (id: string, args: MergeArg[]) => Error | null) {}
  async merge(batchId: string, _boundaryMs: number, _member: string, _watermarkMs: number, args: MergeArg[]): Promise<MergeOutcome> {
    const err = this.fail(batchId, args);
    if (err) throw err;
    this.merged.push(mergeText(args));
    return { status: 'merged' };
  }
  async heartbeat(): Promise<void> {}
  async leave(): Promise<void> {}
}

function replyError(msg: string): Error {
  const e = new Error(msg);
  e.name = 'ReplyError';
  return e;
}

const opts = { batchInterval: 1_000_000, flushInterval: 10_000, leaseTtl: 5000, maxPendingBatches: 100, prefixStats: 'statsd', maxBatchNames: 1_000_000 };
const ingest = { metricsReceived: 0, badLines: 0 };

test('a batch redis keeps rejecting is dropped after 3 tries and counted; later batches still land', async () => {
  const self = new SelfStats();
  const target = new ScriptedTarget((_id, args) => (mergeText(args).includes(' poison ') ? replyError('ERR bad batch') : null));
  const b = new Batcher(oneShard(target), opts, self, ingest, createLogger('silent'));
  b.counter('poison', 1, 1);
  b.tick(); // first try fails
  b.counter('good', 2, 1);
  await b.stop(2000); // retries the poisoned batch, drops it, merges the next
  assert.equal(self.batchesDropped, 1);
  assert.equal(self.mergeErrors, 3);
  assert.ok(target.merged.some((m) => m.includes('good 2')), 'the batch after the poisoned one was merged');
  assert.ok(!target.merged.some((m) => m.includes('poison')));
});

test('a connection failure is retried, not dropped', async () => {
  const self = new SelfStats();
  let failures = 5;
  const target = new ScriptedTarget(() => (failures-- > 0 ? new Error('Connection is closed.') : null));
  const b = new Batcher(oneShard(target), opts, self, ingest, createLogger('silent'));
  b.counter('kept', 7, 1);
  await b.stop(5000);
  assert.equal(self.batchesDropped, 0);
  assert.ok(target.merged.some((m) => m.includes('kept 7')));
  assert.equal(self.mergeErrors, 5);
});

test('a batch reaching maxBatchNames is merged before its tick, and every sample lands once', async () => {
  const self = new SelfStats();
  const target = new ScriptedTarget(() => null);
  const b = new Batcher(oneShard(target), { ...opts, maxBatchNames: 5000 }, self, ingest, createLogger('silent'));
  for (let i = 0; i < 12_000; i++) b.counter(`n.${i}`, 1, 1);
  for (let i = 0; i < 3000; i++) b.set('s', `m${i}`); // members count toward the size too
  // batchInterval is 1,000 s: only the size bound can seal these batches now.
  const deadline = Date.now() + 5000;
  while (target.merged.length < 2 && Date.now() < deadline) await new Promise((r) => setImmediate(r));
  assert.ok(target.merged.length >= 2, `sealed early: ${target.merged.length} merges before any tick`);
  await b.stop(2000);
  const all = target.merged.join('\n');
  for (let i = 0; i < 12_000; i += 997) assert.equal(all.split(` n.${i} 1 `).length - 1, 1, `n.${i} merged once`);
  assert.equal((all.match(/ s\nm\d+\b/g) ?? []).length, 3000);
});

/** Records every merge with its period and the watermark sent along. */
class PeriodTarget implements MergeTarget {
  merges: Array<{ id: string; boundaryMs: number; watermarkMs: number; text: string }> = [];
  heartbeats: number[] = [];
  left = false;
  /** Periods up to this one are closed: merges into them are refused as late. */
  closedMs = 0;
  async merge(batchId: string, boundaryMs: number, _member: string, watermarkMs: number, args: MergeArg[]): Promise<MergeOutcome> {
    if (boundaryMs <= this.closedMs) return { status: 'late', closedMs: this.closedMs };
    this.merges.push({ id: batchId, boundaryMs, watermarkMs, text: mergeText(args) });
    return { status: 'merged' };
  }
  async heartbeat(_member: string, watermarkMs: number): Promise<void> {
    this.heartbeats.push(watermarkMs);
  }
  async leave(): Promise<void> {
    this.left = true;
  }
}

const I = 10_000;

test('a batch never spans two periods: the boundary seals it, and its merge carries the period it was received in', async () => {
  const clock = new ManualClock(5 * I + 9000);
  const target = new PeriodTarget();
  const b = new Batcher(oneShard(target), { ...opts, flushInterval: I }, new SelfStats(), ingest, createLogger('silent'), clock);
  b.start();
  b.counter('before', 1, 1);
  clock.advance(1000); // the boundary at 6 * I
  b.counter('after', 1, 1);
  await new Promise((r) => setImmediate(r)); // the merge of 'before' completes
  clock.advance(I); // 7 * I seals 'after'
  await new Promise((r) => setImmediate(r));
  clock.advance(I); // 8 * I: nothing received since
  await b.stop(2000);
  const before = target.merges.find((m) => m.text.includes('before 1'));
  const after = target.merges.find((m) => m.text.includes('after 1'));
  assert.equal(before?.boundaryMs, 6 * I);
  assert.equal(after?.boundaryMs, 7 * I);
  assert.equal(before?.watermarkMs, 7 * I, 'once merged, the process holds nothing older than the current period');
  assert.ok(target.heartbeats.includes(9 * I), 'an idle boundary is reported at once');
  assert.ok(target.left, 'a clean stop leaves the members');
});

test('a batch whose period closed while it waited goes into the oldest open period and is counted late', async () => {
  const clock = new ManualClock(5 * I + 100);
  const target = new PeriodTarget();
  target.closedMs = 7 * I; // e.g. redis was unreachable longer than the member ttl
  const self = new SelfStats();
  const b = new Batcher(oneShard(target), { ...opts, flushInterval: I }, self, ingest, createLogger('silent'), clock);
  b.counter('held', 2, 1);
  b.counter('held', 3, 1);
  await b.stop(2000);
  assert.equal(target.merges.length, 1);
  assert.equal(target.merges[0]?.boundaryMs, 8 * I);
  assert.equal(self.lateSamples, 2);
});
