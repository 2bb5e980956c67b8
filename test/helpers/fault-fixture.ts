/**
 * What a fault test started, so one afterEach stops all of it, by pid, even
 * after a failed assertion: senders first (no more traffic), then tallyd
 * children (SIGKILL), Carbon stand-ins, redis-servers of the test's own (the
 * keys go with their dir), and last the key prefixes on the shared Redis.
 */
import type { RedisServer } from './redis-server.js';
import { cleanup } from './redis.js';
import type { SteadySender } from './steady-traffic.js';
import type { ChildTallyd } from './tallyd.js';

export class FaultFixture {
  readonly senders: SteadySender[] = [];
  readonly children: ChildTallyd[] = [];
  readonly carbons: Array<{ stop(): Promise<void> }> = [];
  readonly servers: RedisServer[] = [];
  readonly prefixes: string[] = [];

  async cleanup(): Promise<void> {
    for (const s of this.senders.splice(0)) await s.close();
    for (const c of this.children.splice(0)) {
      if (c.proc.pid !== undefined && c.proc.exitCode === null && c.proc.signalCode === null) {
        process.kill(c.proc.pid, 'SIGKILL');
        await c.exited;
      }
    }
    for (const l of this.carbons.splice(0)) await l.stop();
    for (const r of this.servers.splice(0)) await r.stop();
    for (const p of this.prefixes.splice(0)) await cleanup(p);
  }
}
