/**
 * Composition root. Starts in stages, downstream first (store -> sink ->
 * flusher -> batcher -> ingest -> console) so nothing is received before it
 * has somewhere to go; stops in reverse, merging the last batch before exit.
 */
import { ManagementConsole } from './admin/console.js';
import { Batcher } from './aggregate/batcher.js';
import { type Config, isZmqServer } from './config/types.js';
import { FlushHost } from './flush/flush-host.js';
import { type IngestContext, type ListeningPorts, startReportingServers, startServer, type StartedServer } from './server-kinds.js';
import { warmUpIngest } from './ingest/warm-up.js';
import { HealthFacts } from './observability/health.js';
import { quote, type Logger } from './observability/logger.js';
import { RateLimitedLog } from './observability/rate-limited-log.js';
import { SelfStats } from './observability/self-stats.js';
import { UdpDropsSampler } from './observability/udp-drops.js';
import { StatsdLineParser, statusText } from './parse/statsd-line.js';
import { Store } from './store/store.js';

export type { ListeningPorts } from './server-kinds.js';

/** How long `health` waits for Redis to answer (or redis.commandTimeout if that is shorter). */
const HEALTH_PING_TIMEOUT_MS = 1000;

export class Daemon {
  readonly self = new SelfStats();
  readonly parser: StatsdLineParser;
  store: Store | null = null;
  flush: FlushHost | null = null;
  batcher: Batcher | null = null;
  console: ManagementConsole | null = null;
  health: HealthFacts | null = null;
  udpDrops: UdpDropsSampler | null = null;
  readonly ports: ListeningPorts = { udp: [], tcp: [], zmq: [], mgmt: 0, http: null };
  /** The reader each UDP server uses, in ports.udp order: 'native' or 'dgram'. */
  readonly udpReaders: string[] = [];
  private readonly ingest: StartedServer[] = [];
  /** The servers that report on the daemon (HTTP): stopped after the last flush. */
  private readonly reporting: StartedServer[] = [];
  private stopping: Promise<void> | null = null;

  constructor(
    readonly cfg: Config,
    private readonly log: Logger,
    /** zmq: bind the ZeroMQ servers (false in every cluster worker but the first). */
    private readonly role: { zmq: boolean } = { zmq: true },
    /** Fields for the flush thread's logger (e.g. the cluster worker index). */
    private readonly logBindings: Record<string, unknown> = {},
  ) {
    this.parser = new StatsdLineParser({ keyNameSanitize: cfg.keyNameSanitize });
    const badLog = new RateLimitedLog(log.child({ component: 'parse' }));
    this.parser.onBadLine = (status, buf, start, end) =>
      badLog.warn(() => ({
        msg: `bad line: ${statusText(status)}`,
        fields: { line: quote(buf.toString('utf8', start, Math.min(end, start + 400))), badLinesSeen: this.parser.badLines },
      }));
    if (cfg.dumpMessages) {
      const dump = log.child({ component: 'dump' });
      this.parser.onLine = (buf, start, end) => dump.info({ line: buf.toString('utf8', start, end) }, 'received');
    }
  }

  async start(): Promise<void> {
    const { cfg, log } = this;
    try {
      const store = await Store.open(cfg.redis, log.child({ component: 'store' }), undefined, () => this.self.redisTimeouts++);
      this.store = store;
      log.info({ keys: store.keys.base }, 'connected to redis');

      // Flushing (lease, close, compute, commit) and the Carbon sink run in a
      // worker thread, so a big period never stalls ingest on this thread.
      const flush = new FlushHost(cfg, this.self, log, this.logBindings);
      this.flush = flush;
      await flush.start();
      if (cfg.graphiteHost) {
        log.info({ host: cfg.graphiteHost, port: cfg.graphitePort }, 'graphite plaintext output');
      } else {
        log.warn('no graphiteHost configured: metrics are aggregated but not sent anywhere (as statsd)');
      }

      // The store is the batcher's ShardedTarget: each batch is split by store.shardOf and merged into store.shards.
      const batcher = new Batcher(store, cfg, this.self, this.parser, log.child({ component: 'batcher' }));
      this.batcher = batcher;
      batcher.start();

      // Compile the hot path before the sockets open: a cold process drops datagrams in its first moments under load.
      const zmq = this.role.zmq && cfg.servers.some(isZmqServer);
      const warmMs = warmUpIngest({ keyNameSanitize: cfg.keyNameSanitize, prefixStats: cfg.prefixStats, zmq });
      log.debug({ ms: warmMs }, 'ingest path warmed up');

      const udpDrops = new UdpDropsSampler(this.self, log.child({ component: 'udp-drops' }));
      this.udpDrops = udpDrops;
      const ctx: IngestContext = {
        parser: this.parser, batcher, self: this.self, keyNameSanitize: cfg.keyNameSanitize, udpDrops, bindsZmq: this.role.zmq,
        tcp: { maxConnections: cfg.maxConnections, idleTimeoutMs: cfg.tcpIdleTimeout },
      };
      const listening = { ports: this.ports, udpReaders: this.udpReaders, track: (s: StartedServer) => this.ingest.push(s) };
      for (const server of cfg.servers) await startServer(server, ctx, log.child({ component: server.server }), listening);

      udpDrops.start();

      this.health = new HealthFacts(store, flush, batcher, this.self, {
        flushIntervalMs: cfg.flushInterval,
        operatorStatus: cfg.healthStatus,
        pingTimeoutMs: Math.min(HEALTH_PING_TIMEOUT_MS, cfg.redis.commandTimeout),
        outboxMaxBytes: cfg.outboxMaxBytes,
      });
      this.console = new ManagementConsole(cfg, store, this.self, log.child({ component: 'mgmt' }), () => this.parser.badLines, this.health);
      this.ports.mgmt = await this.console.start();
      const reporting = { ports: this.ports, udpReaders: this.udpReaders, track: (s: StartedServer) => this.reporting.push(s) };
      await startReportingServers(cfg, { self: this.self, ingest: this.parser, flush, health: this.health, store, firstWorker: this.role.zmq },
        log, reporting);
      log.info({ flushInterval: cfg.flushInterval, batchInterval: cfg.batchInterval }, 'tallyd is up');
    } catch (err) {
      await this.stop().catch(() => undefined);
      throw err;
    }
  }

  /** Idempotent; resolves once everything received is merged into Redis. */
  stop(): Promise<void> {
    this.stopping ??= this.doStop();
    return this.stopping;
  }

  private async doStop(): Promise<void> {
    const log = this.log;
    // Down from now on: /readyz answers 503 while the process drains (the HTTP server stops last).
    if (this.health) this.health.stopping = true;
    await this.udpDrops?.stop(); // the last sample, while the sockets are still open
    // stopTimeout bounds the whole stop: half at most to merge the last batches, the rest to close, commit and drain.
    const deadline = Date.now() + this.cfg.stopTimeout;
    await Promise.all(this.ingest.map((s) => s.stop()));
    await this.batcher?.stop(this.cfg.stopTimeout / 2);
    await this.flush?.stop(Math.max(1000, deadline - Date.now()));
    await this.console?.stop();
    for (const s of this.reporting) await s.stop();
    await this.store?.quit();
    log.info('tallyd stopped');
  }
}
