/**
 * statsd over TCP: a stream of '\n'-terminated lines, framed per connection
 * (a line may span chunks), each complete run of lines parsed like a packet.
 * At most maxConnections are open per server (more are closed at once,
 * counted as tcp_connections_refused), and a connection that sends nothing
 * for idleTimeoutMs is closed (tcp_idle_closed); its unterminated last line,
 * if any, is handed up as on a client's own close.
 */
import net from 'node:net';
import type { ServerConfig } from '../config/types.js';
import type { Logger } from '../observability/logger.js';
import { RateLimitedLog } from '../observability/rate-limited-log.js';
import type { SelfStats } from '../observability/self-stats.js';
import type { SampleSink } from '../parse/sample-sink.js';
import type { StatsdLineParser } from '../parse/statsd-line.js';
import { LineFramer } from './line-framer.js';
import { ListenError } from './listen-error.js';

/** Bounds of one TCP server (config maxConnections, tcpIdleTimeout). */
export interface TcpLimits {
  readonly maxConnections: number;
  readonly idleTimeoutMs: number;
}

export class TcpServer {
  private server: net.Server | null = null;
  private readonly conns = new Set<net.Socket>();
  private readonly oversizeLog: RateLimitedLog;
  private readonly refusedLog: RateLimitedLog;

  constructor(
    private readonly cfg: ServerConfig,
    private readonly limits: TcpLimits,
    private readonly parser: StatsdLineParser,
    private readonly sink: SampleSink,
    private readonly self: SelfStats,
    private readonly log: Logger,
  ) {
    this.oversizeLog = new RateLimitedLog(log);
    this.refusedLog = new RateLimitedLog(log);
  }

  start(): Promise<number> {
    const { cfg } = this;
    const server = net.createServer((sock) => this.onConnection(sock));
    this.server = server;
    return new Promise((resolve, reject) => {
      const onError = (err: NodeJS.ErrnoException) => reject(new ListenError(err.code ?? 'ELISTEN', `tcp ${cfg.address}:${cfg.port}`, err));
      server.once('error', onError);
      server.listen({ port: cfg.port, host: cfg.address, ipv6Only: false }, () => {
        server.off('error', onError);
        server.on('error', (err) => this.log.error({ err: err.message }, 'tcp server error'));
        const addr = server.address();
        const port = typeof addr === 'object' && addr ? addr.port : cfg.port;
        this.log.info({ address: cfg.address, port }, 'listening for statsd on tcp');
        resolve(port);
      });
    });
  }

  private onConnection(sock: net.Socket): void {
    if (this.conns.size >= this.limits.maxConnections) {
      this.self.tcpConnectionsRefused++;
      this.refusedLog.warn(() => ({
        msg: 'refused a tcp connection: maxConnections open',
        fields: { maxConnections: this.limits.maxConnections, remote: sock.remoteAddress },
      }));
      sock.on('error', () => undefined);
      sock.destroy();
      return;
    }
    this.conns.add(sock);
    const framer = new LineFramer(
      this.cfg.maxPacketSize,
      (buf, start, end) => {
        this.self.packetsReceived++;
        this.parser.parsePacket(buf, start, end, this.sink);
        this.self.lastMsgSeen = Math.round(Date.now() / 1000);
      },
      (bytes, head, headStart, headEnd) => {
        this.self.oversizedPackets++;
        this.oversizeLog.warn(() => ({
          msg: 'dropped an overlong tcp line',
          fields: { bytes, maxPacketSize: this.cfg.maxPacketSize, remote: sock.remoteAddress, head: head.toString('utf8', headStart, headEnd) },
        }));
      },
    );
    sock.on('data', (chunk: Buffer) => framer.push(chunk));
    sock.on('end', () => framer.end());
    sock.setTimeout(this.limits.idleTimeoutMs, () => {
      this.self.tcpIdleClosed++;
      framer.end();
      sock.destroy();
    });
    sock.on('error', () => undefined);
    sock.on('close', () => this.conns.delete(sock));
  }

  /** Stop accepting; let open connections deliver what they sent, then close them. */
  stop(): Promise<void> {
    const server = this.server;
    this.server = null;
    if (!server) return Promise.resolve();
    return new Promise((resolve) => {
      server.close(() => resolve());
      for (const sock of this.conns) sock.end();
      setTimeout(() => {
        for (const sock of this.conns) sock.destroy();
      }, 500).unref();
    });
  }
}
