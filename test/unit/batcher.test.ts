/**
 * The batcher's queue discipline, without Redis: a batch that fails on the
 * connection is retried in order; one Redis keeps rejecting is dropped and
 * counted after three tries instead of blocking every later batch.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Batcher, type MergeTarget } from '../../src/aggregate/batcher.js';
import type { MergeArg } from '../../src/aggregate/merge-args.js';
import { createLogger } from '../../src/observability/logger.js';
import { SelfStats } from '../../src/observability/self-stats.js';
import type { MergeOutcome } from '../../src/store/store.js';

class ScriptedTarget implements MergeTarget {
  merged: string[] = [];
  constructor(private readonly fail: (id: string, args: MergeArg[]) => Error | null) {}
  async merge(batchId: string, _periodMs: number, _member: string, _watermarkMs: number, args: MergeArg[]): Promise<MergeOutcome> {
    const err = this.fail(batchId, args);
    if (err) throw err;
    this.merged.push(args.map(String).join(' '));
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
  const target = new ScriptedTarget((_id, args) => (args.some((a) => String(a) === 'poison') ? replyError('ERR bad batch') : null));
  const b = new Batcher(target, opts, self, ingest, createLogger('silent'));
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
  const b = new Batcher(target, opts, self, ingest, createLogger('silent'));
  b.counter('kept', 7, 1);
  await b.stop(5000);
  assert.equal(self.batchesDropped, 0);
  assert.ok(target.merged.some((m) => m.includes('kept 7')));
  assert.equal(self.mergeErrors, 5);
});

test('a batch reaching maxBatchNames is merged before its tick, and every sample lands once', async () => {
  const self = new SelfStats();
  const target = new ScriptedTarget(() => null);
  const b = new Batcher(target, { ...opts, maxBatchNames: 5000 }, self, ingest, createLogger('silent'));
  for (let i = 0; i < 12_000; i++) b.counter(`n.${i}`, 1, 1);
  for (let i = 0; i < 3000; i++) b.set('s', `m${i}`); // members count toward the size too
  await new Promise((r) => setTimeout(r, 50));
  assert.ok(target.merged.length >= 2, `sealed early: ${target.merged.length} merges before any tick`);
  await b.stop(2000);
  const all = target.merged.join('\n');
  for (let i = 0; i < 12_000; i += 997) assert.equal(all.split(` n.${i} 1 `).length - 1, 1, `n.${i} merged once`);
  assert.equal((all.match(/ s\nm\d+\b/g) ?? []).length, 3000);
});
