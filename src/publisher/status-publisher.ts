/**
 * A status publisher for Node services: the TypeScript twin of the Python
 * publisher of the original pipeline. It connects a PUB (or PUSH) socket to
 * tallyd's bound SUB (or PULL) socket and sends each batch of items as one
 * message: a JSON array, zlib-compressed unless told otherwise, after an
 * optional topic frame.
 *
 *   const pub = new StatusPublisher({ endpoint: 'tcp://127.0.0.1:5555' });
 *   pub.connect();
 *   pub.start(() => [{ name: 'app.queue_depth', value: queue.length }], 5000);
 *   ...
 *   await pub.close();
 *
 * PUB never blocks: while tallyd is unreachable, or beyond sndHwm queued
 * messages, messages are dropped (and the first ones after connecting are
 * lost until the subscription reaches the publisher: ZeroMQ's slow joiner).
 * PUSH blocks instead: publish() waits until libzmq can queue the message.
 */
import { promisify } from 'node:util';
import { deflate } from 'node:zlib';
import { Publisher, Push } from 'zeromq';
import type { ItemType } from '../parse/zmq-item.js';

const deflateAsync = promisify(deflate);

/** One status metric. `time` (unix seconds) is filled in when absent. */
export interface StatusMetric {
  name: string;
  /** A number; a set (type `s`) also takes a string member. */
  value: number | string;
  /** Unix seconds, fractions allowed; default: when published. */
  time?: number;
  /** A statsd type: c, g, ms, h, d or s; tallyd reads a missing type as a gauge. */
  type?: ItemType;
  /** Sample rate in (0, 1], as in statsd. */
  rate?: number;
  /** Graphite tags: `{ region: 'eu' }` or `['region:eu', 'canary']`. */
  tags?: Record<string, string | number> | string[];
}

export interface StatusPublisherOptions {
  /** tallyd's bound socket, e.g. `tcp://127.0.0.1:5555`. */
  endpoint: string;
  /** 'pub' (to a `type: "sub"` server; the default) or 'push' (to a `type: "pull"` server). */
  type?: 'pub' | 'push';
  /** Deflate each message with zlib (default true). */
  zlib?: boolean;
  /** Send this topic as a first frame (tallyd ignores it; other subscribers may filter on it). */
  topic?: string;
  /** ZMQ_SNDHWM: messages queued while tallyd is slow or away (default 1000). */
  sndHwm?: number;
  /** ms close() waits for queued messages to leave (default 1000). */
  linger?: number;
  /** Told about errors of the periodic collect/publish (default: process.emitWarning). */
  onError?: (err: Error) => void;
}

/** The message body of a batch of items: JSON, deflated when asked; `time` filled in as `now` (unix seconds). */
export async function encodeStatus(items: readonly StatusMetric[], zlib: boolean, now = Date.now() / 1000): Promise<Buffer> {
  const json = Buffer.from(JSON.stringify(items.map((i) => (i.time === undefined ? { ...i, time: now } : i))), 'utf8');
  return zlib ? deflateAsync(json) : json;
}

export class StatusPublisher {
  private readonly socket: Publisher | Push;
  private readonly zlib: boolean;
  private readonly onError: (err: Error) => void;
  private timer: NodeJS.Timeout | null = null;
  /** The last send (libzmq allows one at a time per socket); publish() chains on it. */
  private sending: Promise<void> = Promise.resolve();
  private busy = false;
  private closed = false;

  constructor(private readonly opts: StatusPublisherOptions) {
    const socketOptions = { sendHighWaterMark: opts.sndHwm ?? 1000, linger: opts.linger ?? 1000 };
    this.socket = opts.type === 'push' ? new Push(socketOptions) : new Publisher(socketOptions);
    this.zlib = opts.zlib ?? true;
    this.onError = opts.onError ?? ((err) => process.emitWarning(err.message, 'StatusPublisherWarning'));
  }

  /** Connects to tallyd; ZeroMQ reconnects by itself whenever tallyd restarts. */
  connect(): void {
    this.socket.connect(this.opts.endpoint);
  }

  /** Sends the items as one message. Resolves once libzmq has queued it (PUSH may wait for tallyd). */
  publish(items: readonly StatusMetric[]): Promise<void> {
    if (this.closed) return Promise.reject(new Error('StatusPublisher is closed'));
    const next = this.sending.then(async () => {
      const body = await encodeStatus(items, this.zlib);
      await this.socket.send(this.opts.topic === undefined ? body : [this.opts.topic, body]);
    });
    this.sending = next.catch(() => undefined);
    return next;
  }

  /**
   * Calls collect every intervalMs and publishes what it returns. A tick is
   * skipped while the previous one is still collecting or sending (a PUSH
   * socket waiting for tallyd).
   */
  start(collect: () => readonly StatusMetric[] | Promise<readonly StatusMetric[]>, intervalMs: number): void {
    if (this.timer !== null) throw new Error('StatusPublisher already started');
    this.timer = setInterval(() => {
      if (this.busy || this.closed) return;
      this.busy = true;
      Promise.resolve()
        .then(collect)
        .then((items) => (items.length > 0 ? this.publish(items) : undefined))
        .catch((err: unknown) => this.onError(err instanceof Error ? err : new Error(String(err))))
        .finally(() => {
          this.busy = false;
        });
    }, intervalMs);
  }

  /** Stops the timer; waits for the last send, then closes (queued messages get `linger` ms to leave). */
  async close(): Promise<void> {
    if (this.timer !== null) clearInterval(this.timer);
    this.timer = null;
    if (this.closed) return;
    this.closed = true;
    const last = this.sending;
    // A PUSH send waiting for a peer would wait forever: give it the linger time, then close anyway.
    await Promise.race([last, new Promise((r) => setTimeout(r, this.opts.linger ?? 1000).unref())]);
    this.socket.close();
  }
}
