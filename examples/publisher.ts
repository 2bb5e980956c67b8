/**
 * A Node service's status publisher: every few seconds, ~20 status metrics
 * as one zlib-compressed ZeroMQ message to tallyd's SUB socket.
 *
 *   node --import tsx examples/publisher.ts [endpoint] [interval-ms] [count]
 *
 * defaults: tcp://127.0.0.1:5555 (tallyd's shipped SUB socket), every 5000 ms,
 * until Ctrl-C. In your own service, import from the package instead:
 *   import { StatusPublisher } from 'tallyd';
 */
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { StatusPublisher, type StatusMetric } from '../src/index.js';

const endpoint = process.argv[2] ?? 'tcp://127.0.0.1:5555';
const intervalMs = Number(process.argv[3] ?? 5000);
const count = process.argv[4] === undefined ? Infinity : Number(process.argv[4]);

const service = 'example';
const loopDelay = monitorEventLoopDelay();
loopDelay.enable();
let requests = 0;
const work = setInterval(() => requests++, 10); // stands in for the service's real work

const pub = new StatusPublisher({ endpoint, type: 'pub', zlib: true, topic: service });
pub.connect();

let sent = 0;
function collect(): StatusMetric[] {
  const mem = process.memoryUsage();
  const items: StatusMetric[] = [
    { name: `${service}.memory.rss`, value: mem.rss },
    { name: `${service}.memory.heap_used`, value: mem.heapUsed },
    { name: `${service}.uptime`, value: process.uptime() },
    { name: `${service}.event_loop.delay_p99_ms`, value: loopDelay.percentile(99) / 1e6 },
    { name: `${service}.requests`, value: requests, type: 'c', tags: { region: 'eu' } },
  ];
  requests = 0;
  loopDelay.reset();
  if (++sent >= count) setImmediate(() => void stop());
  return items;
}

async function stop(): Promise<void> {
  clearInterval(work);
  await pub.close();
}

pub.start(collect, intervalMs);
process.once('SIGINT', () => void stop());
process.once('SIGTERM', () => void stop());
