/**
 * A merge that hit redis.commandTimeout is a connection-type failure: the
 * batch stays queued and is retried (with the same id, so a timed-out merge
 * that still ran in Redis is not counted twice), never dropped as rejected.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Batcher, oneShard, type MergeTarget } from '../../src/aggregate/batcher.js';
import { createLogger } from '../../src/observability/logger.js';
import { SelfStats } from '../../src/observability/self-stats.js';
import type { MergeOutcome } from '../../src/store/store.js';

test('a timed-out merge is kept and retried under the same batch id, past the 3 tries a rejection gets', async () => {
  const self = new SelfStats();
  const ids: string[] = [];
  let timeouts = 5;
  const target: MergeTarget = {
    async merge(batchId: string): Promise<MergeOutcome> {
      ids.push(batchId);
      if (timeouts-- > 0) throw new Error('Command timed out'); // what ioredis rejects with at commandTimeout
      return { status: 'merged' };
    },
    heartbeat: async () => {},
    leave: async () => {},
  };
  const opts = { batchInterval: 1_000_000, flushInterval: 10_000, leaseTtl: 5000, maxPendingBatches: 100, prefixStats: 'statsd', maxBatchNames: 1_000_000 };
  const b = new Batcher(oneShard(target), opts, self, { metricsReceived: 0, badLines: 0 }, createLogger('silent'));
  b.counter('x', 1, 1);
  await b.stop(10_000);
  assert.equal(self.batchesDropped, 0);
  assert.equal(self.batchesMerged, 1);
  assert.equal(self.mergeErrors, 5);
  assert.equal(ids.length, 6);
  assert.equal(new Set(ids).size, 1, 'every try carries the same batch id');
});
