/**
 * Datagrams the kernel dropped for tallyd's UDP sockets (receive queue full),
 * read from the `drops` column of /proc/net/udp and /proc/net/udp6 on a timer
 * (never on the hot path) and added to SelfStats.udpKernelDrops, a counter
 * that only grows.
 *
 * Which rows are ours: a row whose local port is one tallyd bound AND whose
 * socket inode is one of this process's descriptors (/proc/self/fd links
 * `socket:[inode]`). The port alone is not enough: cluster workers with the
 * native reader each bind the port with SO_REUSEPORT, so every worker would
 * count every worker's drops, and the emitted sum (the batcher adds all
 * processes' counters) would be N times too high; another program on the
 * port with SO_REUSEPORT would be counted too. With the inode, each socket's
 * drops are counted by the process that reads it, once.
 *
 * One case needs more: node:dgram sockets in cluster workers are one socket
 * held by the cluster primary and passed to every worker, so every worker
 * sees the same inode. Such a socket is `shared`; the daemon watches it in
 * one worker only (worker 0), and its drops count from the first sample on,
 * because the socket outlives a restarted worker (its earlier drops were
 * counted before). A socket of this process's own counts from 0: every drop
 * since it was opened.
 *
 * Off Linux (no /proc/net/udp) the sampler does nothing and says so once.
 */
import { readdir, readFile, readlink } from 'node:fs/promises';
import type { Logger } from './logger.js';

export interface UdpSocketRef {
  readonly port: number;
  /** True for a socket passed in by the cluster primary (node:dgram in a worker): see the header. */
  readonly shared: boolean;
}

export interface ProcUdpRow {
  readonly port: number;
  readonly inode: number;
  readonly drops: number;
}

/** The counter the sampler bumps (SelfStats.udpKernelDrops). */
export interface UdpDropsCounter {
  udpKernelDrops: number;
}

const DEFAULT_INTERVAL_MS = 1000;
/** sk_drops is printed as an unsigned 32-bit number and wraps. */
const WRAP = 2 ** 32;

/** Rows of /proc/net/udp or udp6: `sl local rem st tx:rx tr:when retrnsmt uid timeout inode ref pointer drops`. */
export function parseProcNetUdp(text: string): ProcUdpRow[] {
  const rows: ProcUdpRow[] = [];
  const lines = text.split('\n');
  for (let i = 1; i < lines.length; i++) {
    const f = (lines[i] as string).trim().split(/\s+/);
    if (f.length < 13) continue;
    const local = f[1] as string;
    const port = parseInt(local.slice(local.lastIndexOf(':') + 1), 16);
    const inode = Number(f[9]);
    const drops = Number(f[12]);
    if (Number.isInteger(port) && Number.isInteger(inode) && Number.isInteger(drops)) rows.push({ port, inode, drops });
  }
  return rows;
}

export class UdpDropsSampler {
  private readonly watched = new Map<number, boolean>();
  /** inode -> drops at the last sample, for sockets known to be ours. */
  private readonly mine = new Map<number, number>();
  private readonly notMine = new Set<number>();
  private timer: NodeJS.Timeout | null = null;
  private running: Promise<void> | null = null;
  private disabled = false;

  constructor(
    private readonly counter: UdpDropsCounter,
    private readonly log: Logger,
    private readonly intervalMs = DEFAULT_INTERVAL_MS,
    private readonly procRoot = '/proc',
  ) {}

  watch(sock: UdpSocketRef): void {
    this.watched.set(sock.port, sock.shared);
  }

  start(): void {
    if (this.timer) return;
    this.timer = setInterval(() => void this.sample(), this.intervalMs);
    this.timer.unref();
  }

  /** One last sample (call it before the sockets close), then no more. */
  async stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    await this.sample();
    this.disabled = true;
  }

  /** Reads the tables once and adds the new drops; concurrent calls share one read. Never throws. */
  sample(): Promise<void> {
    this.running ??= this.doSample().finally(() => {
      this.running = null;
    });
    return this.running;
  }

  private async doSample(): Promise<void> {
    if (this.disabled || this.watched.size === 0) return;
    let rows: ProcUdpRow[];
    try {
      rows = await this.readRows();
    } catch (err) {
      this.disabled = true;
      this.log.info({ err: (err as Error).message }, 'cannot read /proc/net/udp: kernel drops on the udp sockets are not counted');
      return;
    }
    const candidates = rows.filter((r) => this.watched.has(r.port) && !this.notMine.has(r.inode));
    if (candidates.some((r) => !this.mine.has(r.inode))) await this.classify(candidates);
    for (const r of candidates) {
      const last = this.mine.get(r.inode);
      if (last === undefined) continue;
      const delta = r.drops >= last ? r.drops - last : r.drops + WRAP - last;
      this.counter.udpKernelDrops += delta;
      this.mine.set(r.inode, r.drops);
    }
  }

  private async readRows(): Promise<ProcUdpRow[]> {
    const rows = parseProcNetUdp(await readFile(`${this.procRoot}/net/udp`, 'utf8'));
    try {
      rows.push(...parseProcNetUdp(await readFile(`${this.procRoot}/net/udp6`, 'utf8')));
    } catch {
      // IPv6 disabled: no udp6 table.
    }
    return rows;
  }

  /** Sorts new candidate inodes into ours (this process holds a descriptor) and not ours. */
  private async classify(candidates: readonly ProcUdpRow[]): Promise<void> {
    const held = await this.socketInodes();
    for (const r of candidates) {
      if (this.mine.has(r.inode)) continue;
      if (!held.has(r.inode)) {
        this.notMine.add(r.inode);
        continue;
      }
      // Own socket: every drop since it was opened is ours. Shared socket: from now on.
      this.mine.set(r.inode, this.watched.get(r.port) === true ? r.drops : 0);
    }
  }

  private async socketInodes(): Promise<Set<number>> {
    const out = new Set<number>();
    const dir = `${this.procRoot}/self/fd`;
    let fds: string[];
    try {
      fds = await readdir(dir);
    } catch {
      return out;
    }
    for (const fd of fds) {
      const link = await readlink(`${dir}/${fd}`).catch(() => '');
      const m = /^socket:\[(\d+)\]$/.exec(link);
      if (m?.[1]) out.add(Number(m[1]));
    }
    return out;
  }
}
