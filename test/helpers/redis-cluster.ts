/**
 * A Redis Cluster of the test's own: six Debian redis-servers (3 masters, 3
 * replicas) with `--cluster-enabled yes` on free loopback ports, each in its
 * own temp dir with AOF (a node killed -9 restarts with its data), joined by
 * `redis-cli --cluster create --cluster-replicas 1`. Helpers for the fault
 * tests: the master owning a slot, kill -9 and restart a node, wait for a
 * failover, and a slot migration done step by step (IMPORTING/MIGRATING,
 * MIGRATE, SETSLOT NODE) so a test can hold a slot mid-migration. Always
 * stop() it in an after hook: every process is killed by pid. With
 * `{ password }` every node has `requirepass` and `masterauth` (the default
 * user's password, as a Cluster with AUTH is set up), and the helpers
 * authenticate with it.
 */
import { execFile } from 'node:child_process';
import { Redis } from 'ioredis';
import { freePort, sleep } from './carbon.js';
import { REDIS_SERVER_BIN, RedisServer } from './redis-server.js';

export const REDIS_CLI_BIN = process.env.REDIS_CLI_BIN ?? '/usr/bin/redis-cli';
/** cluster-node-timeout (ms): how long a master may be silent before its replica takes over. */
export const NODE_TIMEOUT_MS = 2000;

/** One node: a RedisServer (test/helpers/redis-server.ts) with the cluster options, AOF on. */
export class ClusterNode {
  private constructor(
    private readonly server: RedisServer,
    readonly busPort: number,
    /** requirepass and masterauth, or null for none. */
    readonly password: string | null,
  ) {}

  /** A node on port and busPort in a fresh temp dir, not started yet (launch() starts it). */
  static async create(port: number, busPort: number, password: string | null = null): Promise<ClusterNode> {
    const args = ['--cluster-port', String(busPort), '--cluster-enabled', 'yes', '--cluster-config-file', 'nodes.conf',
      '--cluster-node-timeout', String(NODE_TIMEOUT_MS)];
    if (password !== null) args.push('--requirepass', password, '--masterauth', password);
    return new ClusterNode(await RedisServer.create({ port, aof: true, args }), busPort, password);
  }

  get port(): number {
    return this.server.port;
  }

  get dir(): string {
    return this.server.dir;
  }

  get addr(): string {
    return `127.0.0.1:${this.port}`;
  }

  get running(): boolean {
    return this.server.running;
  }

  output(): string {
    return this.server.output();
  }

  /** Starts the node (again, after kill9(): with AOF its data comes back); waits for PING. */
  launch(): Promise<void> {
    return this.server.restart();
  }

  /** One command on a fresh connection (no retries): the node's own answer. */
  async call(...args: Array<string | number>): Promise<unknown> {
    const r = new Redis({ host: '127.0.0.1', port: this.port, lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null, connectTimeout: 1000,
      ...(this.password === null ? {} : { password: this.password }) });
    r.on('error', () => undefined);
    try {
      await r.connect();
      return await r.call(String(args[0]), ...args.slice(1).map(String));
    } finally {
      r.disconnect();
    }
  }

  /** kill -9, and wait until the process is gone. */
  kill9(): Promise<void> {
    return this.server.kill9();
  }

  /** Kills by pid if running and removes the node's dir (idempotent). */
  stop(): Promise<void> {
    return this.server.stop();
  }
}

/** One line of CLUSTER NODES. */
export interface NodeInfo {
  id: string;
  addr: string;
  master: boolean;
  failed: boolean;
  masterId: string | null;
  /** The node's slot ranges as "a-b" or "a" (migration markers left out). */
  slots: string[];
}

export function parseClusterNodes(text: string): NodeInfo[] {
  return text.trim().split('\n').map((line) => {
    const f = line.split(' ');
    const flags = (f[2] ?? '').split(',');
    return {
      id: f[0] ?? '',
      addr: (f[1] ?? '').split('@')[0] ?? '',
      master: flags.includes('master'),
      failed: flags.includes('fail') || flags.includes('fail?'),
      masterId: f[3] === '-' ? null : (f[3] ?? null),
      slots: f.slice(8).filter((s) => !s.startsWith('[')),
    };
  });
}

function ownsSlot(info: NodeInfo, slot: number): boolean {
  return info.slots.some((r) => {
    const [a, b] = r.split('-').map(Number);
    return a !== undefined && slot >= a && slot <= (b ?? a);
  });
}

async function waitFor(what: string, timeoutMs: number, pred: () => Promise<boolean>): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown = null;
  for (;;) {
    try {
      if (await pred()) return;
    } catch (err) {
      last = err;
    }
    if (Date.now() > deadline) throw new Error(`redis cluster: timed out waiting for ${what}${last ? ` (last error: ${(last as Error).message})` : ''}`);
    await sleep(100);
  }
}

export class RedisCluster {
  private constructor(readonly nodes: ClusterNode[]) {}

  /** True when the Debian binaries this needs are installed. */
  static async available(): Promise<boolean> {
    const runs = (bin: string) => new Promise<boolean>((resolve) => execFile(bin, ['--version'], (err) => resolve(err === null)));
    return (await runs(REDIS_CLI_BIN)) && (await runs(REDIS_SERVER_BIN));
  }

  /**
   * Starts six nodes, creates the cluster (3 masters, 1 replica each) and waits until it is ok and in sync;
   * with `password`, every node requires it (requirepass) and replicas use it (masterauth).
   */
  static async start(opts: { password?: string } = {}): Promise<RedisCluster> {
    const password = opts.password ?? null;
    const nodes: ClusterNode[] = [];
    const cluster = new RedisCluster(nodes);
    try {
      const ports = new Set<number>();
      while (ports.size < 12) ports.add(await freePort());
      const list = [...ports];
      for (let i = 0; i < 6; i++) nodes.push(await ClusterNode.create(list[i] as number, list[i + 6] as number, password));
      await Promise.all(nodes.map((n) => n.launch()));
      const auth = password === null ? [] : ['-a', password, '--no-auth-warning'];
      await new Promise<void>((resolve, reject) => {
        execFile(REDIS_CLI_BIN, [...auth, '--cluster', 'create', ...nodes.map((n) => n.addr), '--cluster-replicas', '1', '--cluster-yes'],
          { timeout: 60_000 }, (err, stdout, stderr) => (err ? reject(new Error(`redis-cli --cluster create failed: ${err.message}\n${stdout}\n${stderr}`)) : resolve()));
      });
      await cluster.waitHealthy(30_000);
      return cluster;
    } catch (err) {
      await cluster.stop();
      throw err;
    }
  }

  /** `host:port` of every node, for `redis.nodes`. */
  get seeds(): string[] {
    return this.nodes.map((n) => n.addr);
  }

  node(addr: string): ClusterNode {
    const n = this.nodes.find((x) => x.addr === addr);
    if (!n) throw new Error(`no cluster node ${addr}`);
    return n;
  }

  private live(): ClusterNode[] {
    return this.nodes.filter((n) => n.running);
  }

  /** CLUSTER NODES as a live node sees it. */
  async topology(): Promise<NodeInfo[]> {
    const n = this.live()[0];
    if (!n) throw new Error('no cluster node runs');
    return parseClusterNodes(String(await n.call('CLUSTER', 'NODES')));
  }

  async keySlot(key: string): Promise<number> {
    return Number(await (this.live()[0] as ClusterNode).call('CLUSTER', 'KEYSLOT', key));
  }

  /** The live master that owns slot, as every live node agrees. */
  async masterOf(slot: number): Promise<ClusterNode> {
    const info = (await this.topology()).find((i) => i.master && !i.failed && ownsSlot(i, slot));
    if (!info) throw new Error(`no master owns slot ${slot}`);
    return this.node(info.addr);
  }

  masterOfKey(key: string): Promise<ClusterNode> {
    return this.keySlot(key).then((s) => this.masterOf(s));
  }

  /** Masters other than `node`. */
  async otherMasters(node: ClusterNode): Promise<ClusterNode[]> {
    return (await this.topology()).filter((i) => i.master && !i.failed && i.addr !== node.addr && i.slots.length > 0).map((i) => this.node(i.addr));
  }

  /**
   * Every live node says cluster_state:ok and agrees on the topology; every
   * master with slots has a live replica whose link is up and in sync.
   */
  async waitHealthy(timeoutMs: number): Promise<void> {
    await waitFor('cluster_state:ok with every master replicated', timeoutMs, async () => {
      const live = this.live();
      for (const n of live) if (!String(await n.call('CLUSTER', 'INFO')).includes('cluster_state:ok')) return false;
      const topo = await this.topology();
      const masters = topo.filter((i) => i.master && !i.failed && i.slots.length > 0);
      if (masters.length !== 3) return false;
      for (const m of masters) {
        const replicas = topo.filter((i) => i.masterId === m.id && !i.failed && this.nodes.some((n) => n.addr === i.addr && n.running));
        if (replicas.length === 0) return false;
        for (const r of replicas) {
          const info = String(await this.node(r.addr).call('INFO', 'replication'));
          if (!info.includes('master_link_status:up') || info.includes('master_sync_in_progress:1')) return false;
        }
      }
      return true;
    });
  }

  /** Waits until a node other than `dead` owns `slot` as a master and the live nodes say cluster_state:ok. */
  async waitFailover(dead: ClusterNode, slot: number, timeoutMs = 30_000): Promise<ClusterNode> {
    let promoted: ClusterNode | null = null;
    await waitFor(`a replica of ${dead.addr} promoted for slot ${slot}`, timeoutMs, async () => {
      const m = await this.masterOf(slot);
      if (m.addr === dead.addr) return false;
      for (const n of this.live()) if (!String(await n.call('CLUSTER', 'INFO')).includes('cluster_state:ok')) return false;
      promoted = m;
      return true;
    });
    return promoted as unknown as ClusterNode;
  }

  /** kill -9 a node; restart() brings it back on its dir (AOF, nodes.conf): it rejoins as a replica once a failover happened. */
  kill9(node: ClusterNode): Promise<void> {
    return node.kill9();
  }

  restart(node: ClusterNode): Promise<void> {
    return node.launch();
  }

  /** Step 1 of a migration: the target IMPORTING, the source MIGRATING (commands on the slot then get ASK/TRYAGAIN). */
  async beginMigration(slot: number, from: ClusterNode, to: ClusterNode): Promise<void> {
    const fromId = String(await from.call('CLUSTER', 'MYID'));
    const toId = String(await to.call('CLUSTER', 'MYID'));
    await to.call('CLUSTER', 'SETSLOT', slot, 'IMPORTING', fromId);
    await from.call('CLUSTER', 'SETSLOT', slot, 'MIGRATING', toId);
  }

  /** Step 2: MIGRATE up to `count` of the slot's keys from the source; returns how many it moved (0: none left). */
  async migrateKeys(slot: number, from: ClusterNode, to: ClusterNode, count = 10): Promise<number> {
    const keys = (await from.call('CLUSTER', 'GETKEYSINSLOT', slot, count)) as string[];
    if (keys.length === 0) return 0;
    await from.call('MIGRATE', '127.0.0.1', to.port, '', 0, 5000, 'KEYS', ...keys);
    return keys.length;
  }

  /** Step 3: every remaining key moved, then SETSLOT NODE on the target, the source and every other master. */
  async finishMigration(slot: number, from: ClusterNode, to: ClusterNode): Promise<void> {
    while ((await this.migrateKeys(slot, from, to, 100)) > 0);
    const toId = String(await to.call('CLUSTER', 'MYID'));
    await to.call('CLUSTER', 'SETSLOT', slot, 'NODE', toId);
    await from.call('CLUSTER', 'SETSLOT', slot, 'NODE', toId);
    for (const m of await this.otherMasters(to)) if (m !== from) await m.call('CLUSTER', 'SETSLOT', slot, 'NODE', toId);
    await waitFor(`slot ${slot} owned by ${to.addr} on every node`, 15_000, async () => {
      for (const n of this.live()) {
        const topo = parseClusterNodes(String(await n.call('CLUSTER', 'NODES')));
        if (!topo.some((i) => i.addr === to.addr && ownsSlot(i, slot))) return false;
      }
      return true;
    });
  }

  /** DELs every key matching `${prefix}*` on every live master. */
  async cleanup(prefix: string): Promise<void> {
    for (const info of await this.topology()) {
      if (!info.master || info.failed) continue;
      const n = this.node(info.addr);
      if (!n.running) continue;
      let cursor = '0';
      do {
        const [next, keys] = (await n.call('SCAN', cursor, 'MATCH', `${prefix}*`, 'COUNT', 1000)) as [string, string[]];
        cursor = next;
        for (const k of keys) await n.call('DEL', k);
      } while (cursor !== '0');
    }
  }

  /** Kills every node by pid and removes their dirs. Idempotent; safe after a failed start. */
  async stop(): Promise<void> {
    for (const n of this.nodes) await n.stop();
  }
}
