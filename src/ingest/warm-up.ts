/**
 * Runs the ingest hot path on made-up samples before the sockets open:
 * statsd lines of every type and form through the line parser, the
 * Batcher, the Batch and the merge encoding (and ZeroMQ messages through
 * inflate and the fast reader), into throwaway objects that never reach
 * Redis. V8 has then compiled that code when the first real burst arrives.
 * A cold process spends its first moments compiling it on other threads
 * while its receive buffer fills: bench/profile/drop-timeline.ts showed a fresh
 * tallyd dropping datagrams at start at a rate it kept up with afterwards
 * (a restart under load, with clients that buffered, is the same); figures
 * in bench/README.md. Costs some CPU at start; nothing it touches is kept.
 */
import { deflateSync } from 'node:zlib';
import { Batcher, oneShard } from '../aggregate/batcher.js';
import { createLogger } from '../observability/logger.js';
import { SelfStats } from '../observability/self-stats.js';
import { DEFAULT_MAX_NAME_LENGTH, StatsdLineParser } from '../parse/statsd-line.js';
import { createFastReader } from '../parse/zmq-fast.js';
import { decodeFrame } from '../parse/zmq-message.js';

export interface WarmUpOptions {
  readonly keyNameSanitize: boolean;
  readonly prefixStats: string;
  /** Also warm the ZeroMQ path (a zmq server is configured). */
  readonly zmq: boolean;
}

/** Lines (and ZeroMQ items) run through; enough for every hot function to be optimized. */
const LINES = 60_000;
const NAMES = 200;
/** Lines between two batch swaps, as at a high rate. */
const PER_BATCH = 10_000;

function line(i: number): string {
  const n = i % NAMES;
  switch (i % 10) {
    case 0:
      return `warm.t.${n}:${(i % 997) / 10}|ms|@0.5`;
    case 1:
      return `warm.t.${n}:${i % 1000}|ms`;
    case 2:
      return `warm.g.${n}:${i % 3 === 0 ? '+' : ''}${i % 100}|g`;
    case 3:
      return `warm.s.${n}:u${i % 500}|s`;
    case 4:
      return `warm.c.${n}:1|c|#env:prod,az:${i % 3}`;
    case 5:
      return `warm.h.${n}:${i % 50}|h`;
    default:
      return `warm.c.${n}:${1 + (i % 3)}|c${i % 7 === 0 ? '|@0.1' : ''}`;
  }
}

/** Returns the ms it took. */
export function warmUpIngest(opts: WarmUpOptions): number {
  const started = Date.now();
  const parser = new StatsdLineParser({ keyNameSanitize: opts.keyNameSanitize });
  const batcher = new Batcher(
    oneShard({ merge: () => Promise.resolve({ status: 'merged' }), heartbeat: () => Promise.resolve(), leave: () => Promise.resolve() }),
    { batchInterval: 1e9, flushInterval: 1e9, leaseTtl: 1e9, maxPendingBatches: 4, prefixStats: opts.prefixStats, maxBatchNames: 1e9 },
    new SelfStats(),
    parser,
    createLogger('silent'),
  );
  // Datagrams of one line and of 32, as clients send them.
  const datagrams: Buffer[] = [];
  for (let i = 0; i < 640; i++) datagrams.push(Buffer.from(line(i)));
  for (let i = 0; i < 64; i++) datagrams.push(Buffer.from(Array.from({ length: 32 }, (_, k) => line(i * 32 + k)).join('\n')));
  let lines = 0;
  let sinceSwap = 0;
  for (let d = 0; lines < LINES; d = (d + 1) % datagrams.length) {
    const buf = datagrams[d]!;
    const before = parser.metricsReceived;
    parser.parsePacket(buf, 0, buf.length, batcher);
    const n = parser.metricsReceived - before;
    lines += n;
    sinceSwap += n;
    if (sinceSwap >= PER_BATCH) {
      batcher.tick(); // encodes the merge ARGV; the merge itself goes nowhere
      sinceSwap = 0;
    }
  }
  if (opts.zmq) {
    const maxNameLength = DEFAULT_MAX_NAME_LENGTH;
    const reader = createFastReader({ keyNameSanitize: opts.keyNameSanitize, maxNameLength, prefix: '' });
    const frameOpts = { keyNameSanitize: opts.keyNameSanitize, maxNameLength, passthrough: false, maxMessageSize: 1 << 20 };
    const messages = Array.from({ length: 8 }, (_, m) =>
      deflateSync(JSON.stringify(Array.from({ length: 100 }, (_, i) => ({ name: `warm.z.${(m * 100 + i) % NAMES}`, value: i % 5, time: 1796000000, type: i % 4 === 0 ? 'g' : 'c' })))),
    );
    for (let items = 0; items < LINES / 2; items += 100) {
      const decoded = decodeFrame(messages[(items / 100) % messages.length]!, frameOpts, reader);
      if (decoded.fastItems > 0) reader?.emit(batcher);
    }
  }
  batcher.tick();
  return Date.now() - started;
}
