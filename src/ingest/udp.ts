/**
 * statsd over UDP: one datagram is one packet of '\n'-separated lines,
 * parsed straight from the receive Buffer into the batch.
 */
import dgram from 'node:dgram';
import type { ServerConfig } from '../config/types.js';
import type { Logger } from '../observability/logger.js';
import { RateLimitedLog } from '../observability/rate-limited-log.js';
import type { SelfStats } from '../observability/self-stats.js';
import type { SampleSink } from '../parse/sample-sink.js';
import type { StatsdLineParser } from '../parse/statsd-line.js';
import { ListenError } from './listen-error.js';

export class UdpServer {
  private socket: dgram.Socket | null = null;
  private readonly oversizeLog: RateLimitedLog;

  constructor(
    private readonly cfg: ServerConfig,
    private readonly parser: StatsdLineParser,
    private readonly sink: SampleSink,
    private readonly self: SelfStats,
    private readonly log: Logger,
  ) {
    this.oversizeLog = new RateLimitedLog(log);
  }

  /** Resolves with the bound port once listening. */
  start(): Promise<number> {
    const { cfg } = this;
    const sock = dgram.createSocket({ type: cfg.address_ipv6 ? 'udp6' : 'udp4' });
    this.socket = sock;
    sock.on('message', (msg) => this.onMessage(msg));
    return new Promise((resolve, reject) => {
      const onError = (err: NodeJS.ErrnoException) => reject(new ListenError(err.code ?? 'ELISTEN', `udp ${cfg.address}:${cfg.port}`, err));
      sock.once('error', onError);
      sock.bind(cfg.port, cfg.address, () => {
        sock.off('error', onError);
        sock.on('error', (err) => this.log.error({ err: err.message }, 'udp socket error'));
        this.applyRecvBuffer(sock);
        const port = sock.address().port;
        this.log.info({ address: cfg.address, port }, 'listening for statsd on udp');
        resolve(port);
      });
    });
  }

  /** Ask for recvBufferSize; warn once if the kernel gives less (Linux reports double what it granted). */
  private applyRecvBuffer(sock: dgram.Socket): void {
    const want = this.cfg.recvBufferSize;
    try {
      sock.setRecvBufferSize(want);
    } catch (err) {
      this.log.warn({ err: (err as Error).message, recvBufferSize: want }, 'could not set the udp receive buffer');
      return;
    }
    const got = sock.getRecvBufferSize();
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
      self.oversizedPackets++;
      this.oversizeLog.warn(() => ({
        msg: 'dropped an oversized udp packet',
        fields: { bytes: msg.length, maxPacketSize: this.cfg.maxPacketSize, head: msg.toString('utf8', 0, 200) },
      }));
      return;
    }
    this.parser.parsePacket(msg, 0, msg.length, this.sink);
    self.lastMsgSeen = Math.round(Date.now() / 1000);
  }

  stop(): Promise<void> {
    const sock = this.socket;
    this.socket = null;
    if (!sock) return Promise.resolve();
    return new Promise((resolve) => sock.close(() => resolve()));
  }
}
