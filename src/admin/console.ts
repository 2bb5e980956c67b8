/**
 * statsd's management console on mgmt_port: the same commands, the same
 * replies (util.inspect dumps, "END\n\n" terminators), reading the state
 * shared in Redis rather than one process's memory.
 *
 * Bounded against a careless or hostile client: one command per
 * '\n'-terminated line (MGMT_MAX_LINE_BYTES at most, or the connection is
 * closed), a connection's commands run one at a time (reading pauses
 * meanwhile), at most mgmtMaxConcurrent commands run in the process (more are
 * answered with an error and counted), listings are written in pieces as the
 * socket drains, and the commands that change state are accepted only from
 * loopback unless mgmtAllowRemoteChanges.
 */
import net from 'node:net';
import { redactConfig } from '../config/redact.js';
import type { Config } from '../config/types.js';
import { internalCounterNames } from '../flush/build-period.js';
import { ListenError } from '../ingest/listen-error.js';
import type { HealthFacts } from '../observability/health.js';
import type { Logger } from '../observability/logger.js';
import type { SelfStats } from '../observability/self-stats.js';
import type { Store } from '../store/store.js';
import { CommandFramer, MGMT_MAX_LINE_BYTES } from './command-framer.js';
import { backlogText, healthText } from './health-text.js';
import { writeListing, writeWhenReady } from './inspect-stream.js';
import { isLoopback } from './loopback.js';

export const HELP = 'Commands: stats, counters, timers, gauges, sets, delcounters, deltimers, delgauges, health, config, quit\n\n';

/**
 * Commands that take no concurrency slot: answered without Redis work, or
 * with a PING and a few small reads (`health`), so clients that fill every
 * slot with listings never keep a load balancer's `health` from its answer.
 */
const CHEAP = new Set(['help', 'config', 'quit', 'health', '']);

/**
 * ms an unterminated command line waits for its '\n' before it is taken as a
 * command anyway (statsd takes every chunk as a command).
 */
const UNTERMINATED_MS = 200;

/** Console commands running in this process, over every console (mgmtMaxConcurrent bounds it). */
let running = 0;

/** Whether a command changes state: statsd's del* and `health up|down`. */
export function changesState(cmd: string, params: readonly string[]): boolean {
  if (cmd === 'delcounters' || cmd === 'deltimers' || cmd === 'delgauges') return true;
  const action = params[0]?.toLowerCase();
  return cmd === 'health' && (action === 'up' || action === 'down');
}

export class ManagementConsole {
  private server: net.Server | null = null;
  private readonly conns = new Set<net.Socket>();

  constructor(
    private readonly cfg: Config,
    private readonly store: Store,
    private readonly self: SelfStats,
    private readonly log: Logger,
    /** statsd's messages.bad_lines_seen: this process's parser count. */
    private readonly badLines: () => number,
    /** Facts behind `health` and the backlog in `stats`; it holds the operator's `health up|down` too. */
    private readonly health: HealthFacts,
  ) {}

  start(): Promise<number> {
    const { cfg } = this;
    // Half-open: a client that sends its command and shuts its side down (nc -N) still gets the answer; the socket is
    // ended once the commands it sent are answered.
    const server = net.createServer({ allowHalfOpen: true }, (sock) => this.onConnection(sock));
    this.server = server;
    return new Promise((resolve, reject) => {
      const onError = (err: NodeJS.ErrnoException) =>
        reject(new ListenError(err.code ?? 'ELISTEN', `management tcp ${cfg.mgmt_address}:${cfg.mgmt_port}`, err));
      server.once('error', onError);
      server.listen(cfg.mgmt_port, cfg.mgmt_address, () => {
        server.off('error', onError);
        const addr = server.address();
        const port = typeof addr === 'object' && addr ? addr.port : cfg.mgmt_port;
        this.log.info({ address: cfg.mgmt_address, port }, 'management console listening');
        resolve(port);
      });
    });
  }

  private onConnection(sock: net.Socket): void {
    this.conns.add(sock);
    sock.on('close', () => this.conns.delete(sock));
    sock.on('error', (err) => this.log.warn({ err: err.message }, 'MGMT: caught error, moving on'));
    const framer = new CommandFramer(MGMT_MAX_LINE_BYTES);
    const lines: string[] = [];
    let busy = false;
    let ended = false;
    let unterminated: NodeJS.Timeout | null = null;
    const runQueued = async (): Promise<void> => {
      busy = true;
      sock.pause();
      while (lines.length > 0 && sock.writable) await this.run(lines.shift() as string, sock);
      busy = false;
      if (ended) sock.end();
      else if (!sock.destroyed) sock.resume();
    };
    const takeRest = (): void => {
      unterminated = null;
      const rest = framer.rest();
      if (rest !== null) lines.push(rest);
      if (!busy && lines.length > 0) void runQueued();
    };
    sock.on('data', (chunk: Buffer) => {
      if (unterminated !== null) clearTimeout(unterminated);
      unterminated = null;
      const got = framer.push(chunk);
      if (got === null) {
        this.self.mgmtRefused++;
        this.log.warn({ remote: sock.remoteAddress, maxLineBytes: MGMT_MAX_LINE_BYTES }, 'MGMT: command line too long, connection closed');
        lines.length = 0;
        sock.pause();
        sock.end(`ERROR command line longer than ${MGMT_MAX_LINE_BYTES} bytes, closing\n`, () => sock.destroy());
        return;
      }
      lines.push(...got);
      if (framer.pending > 0) unterminated = setTimeout(takeRest, UNTERMINATED_MS);
      if (!busy && lines.length > 0) void runQueued();
    });
    sock.on('end', () => {
      if (unterminated !== null) clearTimeout(unterminated);
      ended = true;
      takeRest();
      if (!busy) sock.end();
    });
    sock.on('close', () => {
      if (unterminated !== null) clearTimeout(unterminated);
    });
  }

  /** One command line, statsd's parsing (trim, split on ' '), behind the remote and concurrency checks. */
  private async run(line: string, sock: net.Socket): Promise<void> {
    const params = line.trim().split(' ');
    const cmd = params.shift() ?? '';
    if (changesState(cmd, params) && !this.cfg.mgmtAllowRemoteChanges && !isLoopback(sock.remoteAddress)) {
      this.self.mgmtRefused++;
      this.log.warn({ remote: sock.remoteAddress, cmd: line.slice(0, 200) }, 'MGMT: refused a state-changing command from a non-loopback address');
      sock.write(`ERROR ${cmd} is accepted only from loopback (set mgmtAllowRemoteChanges: true to allow ${sock.remoteAddress ?? 'this address'})\n`);
      return;
    }
    const limited = !CHEAP.has(cmd);
    if (limited && running >= this.cfg.mgmtMaxConcurrent) {
      this.self.mgmtRefused++;
      sock.write(`ERROR busy: ${running} console commands already running (mgmtMaxConcurrent is ${this.cfg.mgmtMaxConcurrent}), try again\n`);
      return;
    }
    if (limited) running++;
    try {
      await this.handle(cmd, params, sock);
    } catch (err) {
      this.log.warn({ err: (err as Error).message, cmd }, 'management command failed');
      if (!sock.destroyed) sock.write(`ERROR ${(err as Error).message}\n`);
    } finally {
      if (limited) running--;
    }
  }

  stop(): Promise<void> {
    const server = this.server;
    this.server = null;
    if (!server) return Promise.resolve();
    return new Promise((resolve) => {
      server.close(() => resolve());
      for (const sock of this.conns) sock.destroy();
    });
  }

  async handle(cmd: string, params: string[], out: net.Socket): Promise<void> {
    switch (cmd) {
      case 'help':
        out.write(HELP);
        return;
      case 'config':
        out.write(writeConfig(this.cfg));
        return;
      case 'health': {
        const action = params[0]?.toLowerCase();
        if (action === 'up' || action === 'down') this.health.operatorStatus = action;
        out.write(healthText(await this.health.report()));
        return;
      }
      case 'stats':
        out.write(await this.stats());
        return;
      case 'counters':
      case 'timers':
      case 'gauges':
      case 'sets':
        await writeListing(out, await this.dump(cmd), this.cfg.mgmtWriteTimeout);
        return;
      case 'delcounters':
      case 'deltimers':
      case 'delgauges':
        await writeWhenReady(out, await this.del(cmd.slice(3) as 'counters' | 'timers' | 'gauges', params), this.cfg.mgmtWriteTimeout);
        return;
      case 'quit':
        out.end();
        return;
      default:
        out.write('ERROR\n');
    }
  }

  private async stats(): Promise<string> {
    const report = await this.health.report();
    const now = Math.round(Date.now() / 1000);
    const s = this.self;
    const line = (group: string, metric: string, val: number) =>
      `${group}.${metric}: ${metric.startsWith('last_') ? now - val : val}\n`;
    let text = `uptime: ${now - s.startedAt}\n`;
    text += line('messages', 'last_msg_seen', s.lastMsgSeen);
    text += line('messages', 'bad_lines_seen', this.badLines());
    for (const [k, v] of Object.entries(s.graphite)) text += line('graphite', k, v);
    // tallyd's own work and loss counters for this process (the same ones are emitted as statsd.* counters).
    const own: Array<[string, number]> = [
      ['batches_merged', s.batchesMerged],
      ['batches_dropped', s.batchesDropped],
      ['merge_errors', s.mergeErrors],
      ['oversized_packets', s.oversizedPackets],
      ['outbox_dropped', s.outboxDropped],
      ['outbox_dropped_bytes', s.outboxDroppedBytes],
      ['carbon_errors', s.carbonErrors],
      ['lines_sent', s.linesSent],
      ['udp_kernel_drops', s.udpKernelDrops],
      ['redis_timeouts', s.redisTimeouts],
      ['tcp_connections_refused', s.tcpConnectionsRefused],
      ['tcp_idle_closed', s.tcpIdleClosed],
      ['udp_socket_errors', s.udpSocketErrors],
      ['udp_readers_stopped', s.udpReadersStopped],
      ['mgmt_refused', s.mgmtRefused],
      ['zmq_messages_received', s.zmqMessagesReceived],
      ['zmq_bad_frames', s.zmqBadFrames],
      ['zmq_bad_items', s.zmqBadItems],
      ['zmq_oversized', s.zmqOversized],
      ['zmq_disconnects', s.zmqDisconnects],
      ['names_dropped', s.namesDropped],
      ['names_forgotten', s.namesForgotten],
      ['values_clamped', s.valuesClamped],
      ['history_errors', s.historyErrors],
      ['history_skipped', s.historySkipped],
    ];
    for (const [k, v] of own) text += line('tallyd', k, v);
    // The backlog and health facts (the same HealthReport `health` decides from).
    text += backlogText(report);
    return text + 'END\n\n';
  }

  /** Every shard's current state as one listing (a name lives in one shard; the same name in two would be summed). */
  private async dump(type: 'counters' | 'timers' | 'gauges' | 'sets'): Promise<Record<string, unknown>> {
    return (await this.dumpWhere(type, false)).out;
  }

  /** The listing, and (when track) the shards each listed name was found in (the del* commands delete it there). */
  private async dumpWhere(type: 'counters' | 'timers' | 'gauges' | 'sets', track = true): Promise<{ out: Record<string, unknown>; where: Map<string, Set<number>> }> {
    const shards = this.store.shards;
    const curs = await Promise.all(shards.map((s) => s.readCurrent()));
    const out: Record<string, unknown> = {};
    const where = new Map<string, Set<number>>();
    /** Counters with a stored value so far (a known name's 0 is replaced, a value from another shard added). */
    const stored = new Set<string>();
    const found = (n: string, shard: number): void => {
      if (!track) return;
      const set = where.get(n);
      if (set === undefined) where.set(n, new Set([shard]));
      else set.add(shard);
    };
    if (type === 'counters') for (const n of internalCounterNames(this.cfg.prefixStats)) out[n] = 0;
    curs.forEach((cur, shard) => {
      if (type === 'counters') {
        for (const n of cur.known.counters) {
          out[n] ??= 0;
          found(n, shard);
        }
        for (const [n, v] of cur.counters) {
          out[n] = (stored.has(n) ? (out[n] as number) : 0) + v;
          stored.add(n);
          found(n, shard);
        }
      } else if (type === 'gauges') {
        for (const [n, v] of Object.entries(cur.gauges)) {
          out[n] = Number(v);
          found(n, shard);
        }
      } else if (type === 'timers') {
        for (const n of cur.known.timers) {
          out[n] ??= [];
          found(n, shard);
        }
        for (const [n, samples] of cur.timers) {
          const values = (out[n] as number[] | undefined) ?? [];
          for (const v of samples) values.push(v);
          out[n] = values;
          found(n, shard);
        }
      } else {
        for (const n of cur.known.sets) {
          out[n] ??= [];
          found(n, shard);
        }
        for (const [n, ms] of cur.sets) {
          const members = (out[n] as string[] | undefined) ?? [];
          for (const m of ms) members.push(m);
          out[n] = members;
          found(n, shard);
        }
      }
    });
    return { out, where };
  }

  /**
   * statsd's del*: the names matched over every shard's listing, each deleted in the shards it was found in (its own
   * shard, store.storeFor) or, listed without being stored (the internal counters' zeros), in its own shard.
   */
  private async del(type: 'counters' | 'timers' | 'gauges', buckets: string[]): Promise<string> {
    const { out, where } = await this.dumpWhere(type);
    const all = Object.keys(out);
    let text = '';
    const doomed = new Map<number, string[]>();
    for (const bucket of buckets) {
      const matches = existingStats(all, bucket);
      if (matches.length === 0) text += `metric ${bucket} not found\n`;
      for (const m of matches) {
        for (const shard of where.get(m) ?? [this.store.shardOf(m)]) {
          const list = doomed.get(shard);
          if (list === undefined) doomed.set(shard, [m]);
          else list.push(m);
        }
        text += `deleted: ${m}\n`;
      }
    }
    await Promise.all([...doomed].map(([shard, names]) => (this.store.shards[shard] as Store).deleteNames(type, names)));
    return text + 'END\n\n';
  }
}

/** statsd's existing_stats: an exact name, or every name under `folder.*`. */
export function existingStats(names: readonly string[], bucket: string): string[] {
  const matches: string[] = [];
  if (names.includes(bucket)) matches.push(bucket);
  if (bucket.endsWith('.*')) {
    const folder = bucket.slice(0, -1);
    for (const n of names) if (n.startsWith(folder)) matches.push(n);
  }
  return matches;
}

/** statsd's helpers.writeConfig, with secrets (redis.password, the redis url's password) hidden. */
function writeConfig(cfg: Config): string {
  let text = '\n';
  for (const [prop, val] of Object.entries(cfg)) {
    if (typeof val !== 'object' || val === null) {
      text += `${prop}: ${String(val)}\n`;
      continue;
    }
    // The whole section at once: a secret is known by its key (redis > password), which a value alone does not carry.
    for (const [sub, shown] of Object.entries(redactConfig(val) as Record<string, unknown>)) {
      text += `${prop} > ${sub}: ${typeof shown === 'object' && shown !== null ? JSON.stringify(shown) : String(shown)}\n`;
    }
  }
  return text;
}
