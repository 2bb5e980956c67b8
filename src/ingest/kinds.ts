/**
 * The registry of server kinds: how each entry of `servers` becomes a
 * running server. Its config keys and their validation are declared with the
 * rest of the config (config/schema-servers.ts); this is the construction
 * side, one entry per kind, so the daemon starts every server through one
 * loop and a new kind is added here and in the schema, nowhere else.
 */
import cluster from 'node:cluster';
import type { Batcher } from '../aggregate/batcher.js';
import type { AnyServerConfig, ServerConfig, ZmqServerConfig } from '../config/types.js';
import type { Logger } from '../observability/logger.js';
import type { SelfStats } from '../observability/self-stats.js';
import type { UdpDropsSampler } from '../observability/udp-drops.js';
import type { StatsdLineParser } from '../parse/statsd-line.js';
import { TcpServer } from './tcp.js';
import { UdpServer } from './udp.js';
import { ZmqServer } from './zmq.js';

/** What every kind's servers get from the daemon. */
export interface IngestContext {
  readonly parser: StatsdLineParser;
  readonly batcher: Batcher;
  readonly self: SelfStats;
  readonly keyNameSanitize: boolean;
  readonly tcp: { readonly maxConnections: number; readonly idleTimeoutMs: number };
  readonly udpDrops: UdpDropsSampler;
  /** This process binds the ZeroMQ sockets (false in every cluster worker but the first). */
  readonly bindsZmq: boolean;
}

/** Where a started server listens, by kind, in `servers` order. */
export interface ListeningPorts {
  udp: number[];
  tcp: number[];
  /** Endpoints the ZeroMQ sockets bound, e.g. `tcp://0.0.0.0:5555`, with the real port when 0 was asked. */
  zmq: string[];
  mgmt: number;
  /** The HTTP server's port; null when `http` is not configured. */
  http: number | null;
}

export interface StartedServer {
  stop(): Promise<void>;
}

/** Records where a started server listens (and, for UDP, which reader it uses). */
export interface Listening {
  readonly ports: ListeningPorts;
  readonly udpReaders: string[];
  /** Takes each server before it starts, so a start that fails half way is still stopped with the rest. */
  track(server: StartedServer): void;
}

interface ServerKindEntry<C extends AnyServerConfig> {
  /** Starts one server of this kind (handing it to listening.track first), unless this process does not run it. */
  start(cfg: C, ctx: IngestContext, log: Logger, listening: Listening): Promise<void>;
}

const udp: ServerKindEntry<ServerConfig> = {
  async start(cfg, ctx, log, listening) {
    const server = new UdpServer(cfg, ctx.parser, ctx.batcher, ctx.self, log);
    listening.track(server);
    const port = await server.start();
    listening.ports.udp.push(port);
    listening.udpReaders.push(server.reader ?? 'dgram');
    // A node:dgram socket in a cluster worker is the primary's, shared by all workers: worker 0 counts its drops.
    const shared = cluster.isWorker && server.reader === 'dgram';
    if (!shared || ctx.bindsZmq) ctx.udpDrops.watch({ port, shared });
  },
};

const tcp: ServerKindEntry<ServerConfig> = {
  async start(cfg, ctx, log, listening) {
    const server = new TcpServer(cfg, ctx.tcp, ctx.parser, ctx.batcher, ctx.self, log);
    listening.track(server);
    listening.ports.tcp.push(await server.start());
  },
};

const zmq: ServerKindEntry<ZmqServerConfig> = {
  async start(cfg, ctx, log, listening) {
    if (!ctx.bindsZmq) return;
    const server = new ZmqServer(cfg, ctx.keyNameSanitize, ctx.parser, ctx.batcher, ctx.self, log);
    listening.track(server);
    listening.ports.zmq.push(await server.start());
  },
};

/** One entry per kind of `servers` entry. */
const KINDS: { readonly [K in AnyServerConfig['server']]: ServerKindEntry<Extract<AnyServerConfig, { server: K }>> } = { udp, tcp, zmq };

/** Starts the server an entry of `servers` describes. */
export function startServer(cfg: AnyServerConfig, ctx: IngestContext, log: Logger, listening: Listening): Promise<void> {
  // The mapped type pairs each kind with its config; TypeScript cannot follow the pairing through the index.
  const kind = KINDS[cfg.server] as ServerKindEntry<AnyServerConfig>;
  return kind.start(cfg, ctx, log, listening);
}
