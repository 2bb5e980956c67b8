/**
 * The registry of server kinds: udp, tcp and zmq (the entries of `servers`)
 * and http (the `http` section). Their config keys and validation are
 * declared with the rest of the config (config/schema-servers.ts,
 * config/schema-sections.ts); this is the construction side, one entry per
 * kind, so the daemon starts every server through two loops (ingest first,
 * the reporting servers once health is known) and a new kind is added here
 * and in the schema, nowhere else.
 */
import cluster from 'node:cluster';
import type { Batcher } from './aggregate/batcher.js';
import type { AnyServerConfig, Config, HttpConfig, ServerConfig, ZmqServerConfig } from './config/types.js';
import { type HttpParts, startHttp } from './http/start-http.js';
import { TcpServer } from './ingest/tcp.js';
import { UdpServer } from './ingest/udp.js';
import { ZmqServer } from './ingest/zmq.js';
import type { Logger } from './observability/logger.js';
import type { SelfStats } from './observability/self-stats.js';
import type { UdpDropsSampler } from './observability/udp-drops.js';
import type { StatsdLineParser } from './parse/statsd-line.js';

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

/** What the servers that report on the daemon get: its parts, once they run. */
export interface ReportingContext extends HttpParts {
  /** This process is the first (or only) one: reporting servers run there only, as ZeroMQ does. */
  readonly firstWorker: boolean;
}

interface ReportingKindEntry<C> {
  /** The configs of this kind in a Config (none when its section is absent). */
  configs(cfg: Config): ReadonlyArray<C>;
  start(cfg: C, ctx: ReportingContext, log: Logger, listening: Listening): Promise<void>;
}

const http: ReportingKindEntry<HttpConfig> = {
  configs: (cfg) => (cfg.http ? [cfg.http] : []),
  async start(cfg, ctx, log, listening) {
    // In the first cluster worker only: its /metrics counters are one process's, and must not come from a different
    // worker at each scrape.
    if (!ctx.firstWorker) return;
    const server = await startHttp(cfg, ctx, log);
    listening.track(server);
    listening.ports.http = server.port;
  },
};

/** The servers that report on the daemon (started once health is known, stopped after the last flush). */
const REPORTING_KINDS = { http } as const;

/** Starts every reporting server the config asks for. */
export async function startReportingServers(cfg: Config, ctx: ReportingContext, log: Logger, listening: Listening): Promise<void> {
  for (const [name, kind] of Object.entries(REPORTING_KINDS)) {
    for (const c of kind.configs(cfg)) await kind.start(c, ctx, log.child({ component: name }), listening);
  }
}
