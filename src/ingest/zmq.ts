/**
 * ZeroMQ status messages: tallyd binds a SUB socket (publishers connect with
 * PUB) or a PULL socket (publishers connect with PUSH), and one async loop
 * receives messages. The last frame of each (a leading topic frame is
 * ignored) is decoded by parse/zmq-message.ts; its items go into the statsd
 * aggregation (`aggregate`) or straight to the outbox as Graphite lines with
 * their own timestamps (`passthrough`). Statsd lines in a frame are always
 * aggregated: they carry no timestamp of their own.
 *
 * A bad message is counted, logged (rate-limited, offending bytes cut
 * short) and skipped; nothing a publisher sends stops the loop.
 *
 * Bounds before memory is spent: libzmq itself refuses a frame longer than
 * maxMessageSize (ZMQ_MAXMSGSIZE, checked on the frame's header, before its
 * body is read) and drops that peer's connection; the publisher's libzmq
 * reconnects. libzmq gives no reason with a disconnect, so every peer
 * disconnect is counted (`zmq_disconnects`) and logged. libzmq has no bound
 * on frames per message and zeromq.js's receive() returns them all, so a
 * message of more than MAX_FRAMES frames is counted as bad (`zmq_bad_frames`)
 * as soon as receive() hands it over, and none of it is read or kept.
 */
import { Pull, Subscriber } from 'zeromq';
import type { ZmqServerConfig } from '../config/types.js';
import { quote, type Logger } from '../observability/logger.js';
import { RateLimitedLog } from '../observability/rate-limited-log.js';
import type { SelfStats } from '../observability/self-stats.js';
import type { SampleSink } from '../parse/sample-sink.js';
import { DEFAULT_MAX_NAME_LENGTH, type StatsdLineParser } from '../parse/statsd-line.js';
import { createFastReader, type ZmqFastReader } from '../parse/zmq-fast.js';
import { applyItem, excerpt, passthroughLine } from '../parse/zmq-item.js';
import {
  decodeFrame, FRAME_BAD_ZLIB, FRAME_NOT_TEXT, FRAME_OK, FRAME_OVERSIZED, frameStatusText, type FrameOptions,
} from '../parse/zmq-message.js';
import { ListenError } from './listen-error.js';

/** Where a passthrough line goes: the batcher queues it for the outbox in its next merge. */
export interface ZmqSink extends SampleSink {
  passthrough(line: string): void;
}

/** Frames of a message: a topic frame (SUB) and the status frame. More is a bad message. */
export const MAX_FRAMES = 2;

/** Messages handled back to back before the loop lets timers (the batch tick) run. */
const YIELD_EVERY = 256;
/** ms the receive loop lets messages gather in libzmq's queue once it has emptied it under a stream (receiveLoop). */
const HOLD_MS = 1;

/** Offending bytes for a log line, about 200 characters: as JSON-quoted text, or as hex when binary. */
export function showBytes(buf: Buffer, binary: boolean): string {
  const more = buf.length > (binary ? 100 : 200) ? `…(${buf.length} bytes)` : '';
  if (binary) return `hex:${buf.subarray(0, 100).toString('hex')}${more}`;
  return `${quote(buf.toString('utf8', 0, 200))}${more}`;
}

/**
 * Prepends the socket's prefix to the names of statsd lines inside frames.
 * The parser's intern key ids (SampleSink) stand for the unprefixed names,
 * so they are deliberately not passed on.
 */
class PrefixSink implements SampleSink {
  constructor(
    private readonly prefix: string,
    private readonly sink: SampleSink,
  ) {}
  counter(name: string, value: number, rate: number): void {
    this.sink.counter(this.prefix + name, value, rate);
  }
  gauge(name: string, value: number, delta: boolean): void {
    this.sink.gauge(this.prefix + name, value, delta);
  }
  timer(name: string, value: number, rate: number): void {
    this.sink.timer(this.prefix + name, value, rate);
  }
  set(name: string, member: string): void {
    this.sink.set(this.prefix + name, member);
  }
}

export class ZmqServer {
  private socket: Subscriber | Pull | null = null;
  private loop: Promise<void> | null = null;
  private readonly opts: FrameOptions;
  private readonly lineSink: SampleSink;
  /** Reads plain JSON items without JSON.parse (aggregate mode, with the native addon only). */
  private readonly fast: ZmqFastReader | undefined;
  private readonly badFrameLog: RateLimitedLog;
  private readonly badItemLog: RateLimitedLog;
  private readonly oversizeLog: RateLimitedLog;
  private readonly disconnectLog: RateLimitedLog;

  constructor(
    private readonly cfg: ZmqServerConfig,
    keyNameSanitize: boolean,
    private readonly parser: StatsdLineParser,
    private readonly sink: ZmqSink,
    private readonly self: SelfStats,
    private readonly log: Logger,
    /** false: every message takes the general path, as without the native addon (tests and bench/micro/micro-parse.ts). */
    fastPath = true,
  ) {
    this.opts = {
      keyNameSanitize,
      maxNameLength: DEFAULT_MAX_NAME_LENGTH,
      passthrough: cfg.mode === 'passthrough',
      maxMessageSize: cfg.maxMessageSize,
    };
    this.lineSink = cfg.prefix === '' ? sink : new PrefixSink(cfg.prefix, sink);
    this.fast = this.opts.passthrough || !fastPath ? undefined : createFastReader({ keyNameSanitize, maxNameLength: DEFAULT_MAX_NAME_LENGTH, prefix: cfg.prefix });
    this.badFrameLog = new RateLimitedLog(log);
    this.badItemLog = new RateLimitedLog(log);
    this.oversizeLog = new RateLimitedLog(log);
    this.disconnectLog = new RateLimitedLog(log);
  }

  /** Binds; resolves with the endpoint bound (the real port when the config asked for 0 or `*`). */
  async start(): Promise<string> {
    const { cfg } = this;
    // maxMessageSize: libzmq refuses a longer frame from its header, before reading it, and drops that connection.
    const options = { receiveHighWaterMark: cfg.highWaterMark, maxMessageSize: cfg.maxMessageSize, linger: 0, ipv6: cfg.bind.startsWith('tcp://[') };
    const sock = cfg.type === 'sub' ? new Subscriber(options) : new Pull(options);
    if (sock instanceof Subscriber) sock.subscribe(); // everything: topics are not filtered
    try {
      await sock.bind(cfg.bind.startsWith('tcp://') ? cfg.bind.replace(/:0$/, ':*') : cfg.bind);
    } catch (err) {
      sock.close();
      const e = err as NodeJS.ErrnoException;
      throw new ListenError(e.code ?? 'ELISTEN', `zmq ${cfg.type} ${cfg.bind}`, e);
    }
    this.socket = sock;
    this.watchDisconnects(sock);
    const endpoint = sock.lastEndpoint ?? cfg.bind;
    this.loop = this.receiveLoop(sock);
    // decoder: 'fast' when plain JSON items are read by the native addon's scanner, 'general' (JSON.parse) for all else.
    const decoder = this.fast ? 'fast' : 'general';
    this.log.info({ bind: endpoint, type: cfg.type, mode: cfg.mode, prefix: cfg.prefix, decoder }, `listening for zeromq status messages (${cfg.type})`);
    return endpoint;
  }

  /**
   * Counts and logs peer disconnects (the socket's monitor; it ends when the socket closes). libzmq reports no
   * reason, so a publisher that closed and one dropped for a frame over maxMessageSize look the same here.
   */
  private watchDisconnects(sock: Subscriber | Pull): void {
    const self = this.self;
    sock.events.on('disconnect', (e) => {
      self.zmqDisconnects++;
      this.disconnectLog.warn(() => ({
        msg: 'a zeromq publisher disconnected: it closed its socket, or libzmq dropped it for a frame over maxMessageSize',
        fields: { endpoint: e.address, maxMessageSize: this.cfg.maxMessageSize, zmqDisconnects: self.zmqDisconnects },
      }));
    });
  }

  /** Closes the socket (messages still queued in libzmq are dropped) and waits for the loop to end. */
  async stop(): Promise<void> {
    const sock = this.socket;
    this.socket = null;
    if (!sock) return;
    sock.close();
    await this.loop;
  }

  /**
   * Reads messages until the socket closes. Under a stream it drains libzmq's queue with non-blocking reads
   * (receiveTimeout 0: zeromq.js answers at once), and when the queue is empty it holds for HOLD_MS before
   * draining again, instead of waiting on zeromq.js's poller for every message (a poll, a wakeup and a deferred
   * promise each). Messages wait in libzmq's queue meanwhile (highWaterMark). A hold that finds nothing means
   * the stream stopped: the loop then waits with a blocking receive, which costs nothing while idle.
   */
  private async receiveLoop(sock: Subscriber | Pull): Promise<void> {
    let handled = 0;
    let sinceHold = 0;
    let blocking = true;
    sock.receiveTimeout = -1;
    while (!sock.closed) {
      let frames: Buffer[];
      try {
        frames = await sock.receive();
      } catch (err) {
        if (sock.closed) return;
        if ((err as NodeJS.ErrnoException).code === 'EAGAIN' && !blocking) {
          if (sinceHold > 0) {
            sinceHold = 0;
            await sleep(HOLD_MS);
          } else {
            blocking = true;
            sock.receiveTimeout = -1;
          }
          continue;
        }
        this.log.error({ err: (err as Error).message }, 'zeromq receive failed; retrying');
        await sleep(100);
        continue;
      }
      if (blocking) {
        blocking = false;
        sock.receiveTimeout = 0;
      }
      sinceHold++;
      try {
        this.onMessage(frames);
      } catch (err) {
        // Decoding never throws; this guards the loop against anything downstream.
        this.self.zmqBadFrames++;
        this.log.error({ err: (err as Error).message }, 'error while handling a zeromq message; skipped');
      }
      if (++handled % YIELD_EVERY === 0) await new Promise((r) => setImmediate(r));
    }
  }

  /** One message: its last frame decoded and handed on. Exposed for tests. */
  onMessage(frames: readonly Buffer[]): void {
    const self = this.self;
    self.zmqMessagesReceived++;
    if (frames.length > MAX_FRAMES) {
      this.badFrame(`${frames.length} frames (at most ${MAX_FRAMES}: a topic and the status)`, '', frames[0]!, true);
      return;
    }
    const frame = frames[frames.length - 1] ?? Buffer.alloc(0);
    const decoded = decodeFrame(frame, this.opts, this.fast);
    if (decoded.status !== FRAME_OK) {
      if (decoded.status === FRAME_OVERSIZED) {
        self.zmqOversized++;
        this.oversizeLog.warn(() => ({
          msg: 'dropped an oversized zeromq message',
          fields: { bytes: frame.length, detail: decoded.detail, maxMessageSize: this.cfg.maxMessageSize, zmqOversized: self.zmqOversized },
        }));
      } else {
        const binary = decoded.status === FRAME_NOT_TEXT || decoded.status === FRAME_BAD_ZLIB;
        this.badFrame(frameStatusText(decoded.status), decoded.detail, decoded.text, binary);
      }
      return;
    }
    let accepted = 0;
    if (decoded.format === 'statsd') {
      const before = this.parser.goodLines;
      this.parser.parsePacket(decoded.text, 0, decoded.text.length, this.lineSink);
      accepted = this.parser.goodLines - before;
    } else if (decoded.fastItems > 0) {
      this.fast?.emit(this.sink);
      accepted = decoded.fastItems;
    } else {
      const prefix = this.cfg.prefix;
      for (const item of decoded.items) {
        if (this.opts.passthrough) this.sink.passthrough(passthroughLine(item, prefix));
        else applyItem(item, prefix, this.sink);
      }
      accepted = decoded.items.length;
      if (decoded.badItems.length > 0) {
        self.zmqBadItems += decoded.badItems.length;
        const bad = decoded.badItems[0]!;
        this.badItemLog.warn(() => ({
          msg: `bad item in a zeromq message: ${bad.reason}`,
          fields: { item: excerpt(bad.item), index: bad.index, badInMessage: decoded.badItems.length, zmqBadItems: self.zmqBadItems },
        }));
        if (accepted === 0) this.badFrame('no valid item', '', decoded.text, false);
      }
    }
    if (decoded.format !== 'statsd') self.zmqItemsReceived += accepted;
    if (decoded.format === 'statsd' && accepted === 0) this.badFrame('no valid statsd line', '', decoded.text, false);
    if (accepted > 0) self.lastMsgSeen = Math.round(Date.now() / 1000);
  }

  private badFrame(reason: string, detail: string, bytes: Buffer, binary: boolean): void {
    const self = this.self;
    self.zmqBadFrames++;
    this.badFrameLog.warn(() => ({
      msg: `bad zeromq message: ${reason}`,
      fields: { ...(detail === '' ? {} : { detail }), bytes: bytes.length, head: showBytes(bytes, binary), zmqBadFrames: self.zmqBadFrames },
    }));
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}
