/**
 * statsd over UDP: one datagram is one packet of '\n'-separated lines,
 * parsed straight from the receive Buffer into the batch.
 *
 * Two readers (servers[].udpReader): the native one (native/udp_reader.c:
 * recvmmsg, up to 64 datagrams per call into JavaScript, each parsed in
 * place in one shared Buffer) when it was built, else node:dgram (a Buffer,
 * an address object and a call into JavaScript per datagram). The native
 * reader also holds its reads (HOLD_MS below), fewer wakeups under a stream;
 * what each saves is measured in bench/README.md. In a cluster each worker opens its own
 * native socket on the port with SO_REUSEPORT and the kernel spreads the
 * senders over them; node:dgram sockets are shared through the cluster
 * primary instead.
 */
import cluster from 'node:cluster';
import { randomBytes } from 'node:crypto';
import dgram from 'node:dgram';
import { lookup } from 'node:dns/promises';
import { constants as osConstants } from 'node:os';
import type { ServerConfig } from '../config/types.js';
import type { Logger } from '../observability/logger.js';
import { RateLimitedLog } from '../observability/rate-limited-log.js';
import type { SelfStats } from '../observability/self-stats.js';
import type { SampleSink } from '../parse/sample-sink.js';
import type { StatsdLineParser } from '../parse/statsd-line.js';
import { ListenError } from './listen-error.js';
import { nativeAddon, UdpEvent, type TallydAddon } from '../native/addon.js';

/** 'ECONNREFUSED' for 111, ...; the number when node does not know it. */
function errnoName(errno: number): string {
  for (const [name, value] of Object.entries(osConstants.errno)) if (value === errno) return name;
  return String(errno);
}

/** At a stop, how long a node:dgram socket is given to read what the kernel had queued. */
const DRAIN_TIMEOUT_MS = 2000;

/** Datagrams one native read takes (one recvmmsg, one call into JavaScript). */
const NATIVE_SLOTS = 64;
/**
 * How long the native reader lets datagrams gather after a read that emptied the queue, instead of waking for the
 * next one (udp_reader.c, hold()): at 300,000 one-line datagrams/s it reads ~64 per call instead of a few, and
 * its CPU per datagram halves. Only when the kernel granted a receive buffer of at least HOLD_MIN_RCVBUF
 * (as read back, which is double the request), which holds well over 1 ms of the fastest stream tallyd can take.
 */
const HOLD_MS = 1;
const HOLD_MIN_RCVBUF = 1 << 20;
/** No UDP payload is longer (65,507 over IPv4): a slot never needs more. */
const MAX_DATAGRAM = 65536;

export class UdpServer {
  private socket: dgram.Socket | null = null;
  private native: { lib: TallydAddon; handle: unknown } | null = null;
  private readonly oversizeLog: RateLimitedLog;
  private readonly readErrorLog: RateLimitedLog;
  /** Why the native reader stopped taking datagrams (a socket error it could not clear), or null. */
  stoppedBy: string | null = null;
  private boundPort = 0;
  /** At a stop (node:dgram): the marker datagram that ends the drain, and what to call when it is read. */
  private drainMarker: Buffer | null = null;
  private drained: (() => void) | null = null;
  /** Which reader runs: 'native' or 'dgram' (tests, logs). */
  reader: 'native' | 'dgram' | null = null;

  constructor(
    private readonly cfg: ServerConfig,
    private readonly parser: StatsdLineParser,
    private readonly sink: SampleSink,
    private readonly self: SelfStats,
    private readonly log: Logger,
  ) {
    this.oversizeLog = new RateLimitedLog(log);
    this.readErrorLog = new RateLimitedLog(log);
  }

  /** Resolves with the bound port once listening. */
  async start(): Promise<number> {
    const want = this.cfg.udpReader;
    if (want !== 'dgram') {
      const lib = nativeAddon();
      if (typeof lib !== 'string') return this.startNative(lib);
      if (want === 'native') {
        const cause: NodeJS.ErrnoException = Object.assign(new Error(`udpReader is "native" but the native reader is not available: ${lib}`), { code: 'ENATIVE' });
        throw new ListenError('ENATIVE', `udp ${this.cfg.address}:${this.cfg.port}`, cause);
      }
      this.log.info({ reason: lib }, 'native udp reader not available; reading with node:dgram');
    }
    return this.startDgram();
  }

  private async startNative(lib: TallydAddon): Promise<number> {
    const { cfg } = this;
    const family = cfg.address_ipv6 ? 6 : 4;
    const where = `udp ${cfg.address}:${cfg.port}`;
    let address: string;
    try {
      address = (await lookup(cfg.address, { family })).address;
    } catch (err) {
      const e = err as NodeJS.ErrnoException;
      throw new ListenError(e.code ?? 'ENOTFOUND', where, e);
    }
    const slot = Math.max(1, Math.min(cfg.maxPacketSize, MAX_DATAGRAM));
    const buf = Buffer.allocUnsafeSlow(slot * NATIVE_SLOTS);
    const lengths = new Int32Array(NATIVE_SLOTS);
    let sock;
    try {
      // Cluster workers each bind their own socket on the port; the kernel spreads senders over them.
      sock = lib.open(family, address, cfg.port, cfg.recvBufferSize, cluster.isWorker, buf, slot, lengths, (n, kind) => this.onBatch(buf, slot, lengths, n, kind));
    } catch (err) {
      const e = err as NodeJS.ErrnoException;
      throw new ListenError(e.code ?? 'ELISTEN', where, e);
    }
    this.native = { lib, handle: sock.handle };
    this.boundPort = sock.port;
    this.reader = 'native';
    this.checkRecvBuffer(sock.rcvbuf);
    const holdMs = sock.rcvbuf >= HOLD_MIN_RCVBUF ? HOLD_MS : 0;
    lib.start(sock.handle, holdMs);
    this.log.info({ address: cfg.address, port: sock.port, reader: 'native', perRead: sock.slots, holdMs }, 'listening for statsd on udp');
    return sock.port;
  }

  /** n datagrams from the native reader, in slots of buf; or -errno of a socket error (see UdpEvent). Never throws. */
  private onBatch(buf: Buffer, slot: number, lengths: Int32Array, n: number, kind: number): void {
    if (kind !== UdpEvent.Read || n < 0) {
      this.socketError(n, kind);
      return;
    }
    try {
      const { self, parser, sink } = this;
      const max = this.cfg.maxPacketSize;
      for (let i = 0; i < n; i++) {
        const len = lengths[i]!;
        const off = i * slot;
        self.packetsReceived++;
        if (len > max) this.oversized(len, buf, off, Math.min(len, slot));
        else parser.parsePacket(buf, off, off + len, sink);
      }
      self.lastMsgSeen = Math.round(Date.now() / 1000);
    } catch (err) {
      // Parsing never throws; this keeps a bug downstream from reaching the native caller.
      this.log.error({ err: (err as Error).message }, 'error while handling udp datagrams; skipped');
    }
  }

  /**
   * The socket reported an error (an ICMP error such as ECONNREFUSED raises POLLERR; libuv then stops polling) or a
   * read failed: counted and logged. The reader clears the error and reads on; when it could not, it has stopped,
   * and that is logged as an error and makes health down (SelfStats.udpReadersStopped).
   */
  private socketError(n: number, kind: number): void {
    this.self.udpSocketErrors++;
    const fields = { errno: -n, code: n < 0 ? errnoName(-n) : 'none', address: this.cfg.address, port: this.boundPort };
    if (kind === UdpEvent.Stopped) {
      if (this.stoppedBy === null) this.self.udpReadersStopped++;
      this.stoppedBy = `socket error ${fields.code}`;
      this.log.error(fields, 'udp socket error the native reader could not clear: it has stopped reading; restart tallyd');
    } else {
      const msg = kind === UdpEvent.PollError ? 'udp socket error (cleared; reading on)' : 'udp read failed';
      this.readErrorLog.warn(() => ({ msg, fields }));
    }
  }

  private startDgram(): Promise<number> {
    const { cfg } = this;
    const sock = dgram.createSocket({ type: cfg.address_ipv6 ? 'udp6' : 'udp4' });
    this.socket = sock;
    this.reader = 'dgram';
    sock.on('message', (msg) => {
      if (this.drainMarker !== null && msg.equals(this.drainMarker)) this.drained?.();
      else this.onMessage(msg);
    });
    return new Promise((resolve, reject) => {
      const onError = (err: NodeJS.ErrnoException) => reject(new ListenError(err.code ?? 'ELISTEN', `udp ${cfg.address}:${cfg.port}`, err));
      sock.once('error', onError);
      sock.bind(cfg.port, cfg.address, () => {
        sock.off('error', onError);
        sock.on('error', (err) => this.log.error({ err: err.message }, 'udp socket error'));
        this.applyRecvBuffer(sock);
        const port = sock.address().port;
        this.log.info({ address: cfg.address, port, reader: 'dgram' }, 'listening for statsd on udp');
        resolve(port);
      });
    });
  }

  /** Ask for recvBufferSize; warn once if the kernel gives less. */
  private applyRecvBuffer(sock: dgram.Socket): void {
    const want = this.cfg.recvBufferSize;
    try {
      sock.setRecvBufferSize(want);
    } catch (err) {
      this.log.warn({ err: (err as Error).message, recvBufferSize: want }, 'could not set the udp receive buffer');
      return;
    }
    this.checkRecvBuffer(sock.getRecvBufferSize());
  }

  /** got: SO_RCVBUF as read back (Linux reports double what it granted). */
  private checkRecvBuffer(got: number): void {
    const want = this.cfg.recvBufferSize;
    if (got < want) {
      this.log.warn(
        { recvBufferSize: want, granted: got },
        'the kernel clamped the udp receive buffer (raise net.core.rmem_max); bursts may be dropped before tallyd sees them',
      );
    }
  }

  private onMessage(msg: Buffer): void {
    const self = this.self;
    self.packetsReceived++;
    if (msg.length > this.cfg.maxPacketSize) {
      this.oversized(msg.length, msg, 0, msg.length);
      return;
    }
    this.parser.parsePacket(msg, 0, msg.length, this.sink);
    self.lastMsgSeen = Math.round(Date.now() / 1000);
  }

  /** A datagram of `bytes` over maxPacketSize, whose first `have` bytes are buf[off...]: counted and logged. */
  private oversized(bytes: number, buf: Buffer, off: number, have: number): void {
    this.self.oversizedPackets++;
    this.oversizeLog.warn(() => ({
      msg: 'dropped an oversized udp packet',
      fields: { bytes, maxPacketSize: this.cfg.maxPacketSize, head: buf.toString('utf8', off, off + Math.min(have, 200)) },
    }));
  }

  /**
   * Stops taking datagrams and reads every one the kernel already queued for
   * this socket before closing it, so a clean stop loses none it was sent.
   * The native reader does it in C (close() connects the socket to a peer
   * that never sends, then reads to the end). A node:dgram socket is
   * connected to itself and sends itself a marker: once the marker is read,
   * so is everything queued before it (bounded by DRAIN_TIMEOUT_MS). In a
   * cluster a node:dgram socket is shared by all workers, so it is closed as
   * it is.
   */
  async stop(): Promise<void> {
    const native = this.native;
    this.native = null;
    if (native) native.lib.close(native.handle);
    if (this.stoppedBy !== null) {
      this.stoppedBy = null;
      this.self.udpReadersStopped--;
    }
    const sock = this.socket;
    this.socket = null;
    if (!sock) return;
    if (!cluster.isWorker) await this.drainDgram(sock).catch((err: unknown) => this.log.debug({ err: (err as Error).message }, 'udp drain at stop failed'));
    await new Promise<void>((resolve) => sock.close(() => resolve()));
  }

  private async drainDgram(sock: dgram.Socket): Promise<void> {
    const { address, port, family } = sock.address();
    const self = family === 'IPv6' ? (address === '::' ? '::1' : address) : address === '0.0.0.0' ? '127.0.0.1' : address;
    await new Promise<void>((resolve, reject) => {
      sock.once('connect', () => resolve());
      try {
        sock.connect(port, self);
      } catch (err) {
        reject(err instanceof Error ? err : new Error(String(err)));
      }
    });
    const marker = randomBytes(16);
    let timer: NodeJS.Timeout | undefined;
    const done = new Promise<void>((resolve) => {
      this.drained = resolve;
      timer = setTimeout(resolve, DRAIN_TIMEOUT_MS);
    });
    this.drainMarker = marker;
    sock.send(marker);
    await done;
    clearTimeout(timer);
    this.drainMarker = null;
    this.drained = null;
  }
}
