/**
 * Etsy statsd 0.9 (the `statsd` devDependency) as a reference in tests: run
 * it as a child process with its own config, send it raw datagrams, and group
 * what it (or tallyd) wrote to a CarbonListener by flush.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import dgram from 'node:dgram';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { CarbonLine } from './carbon.js';
import { freePort, freeUdpPort } from './carbon.js';
import { ROOT } from './tallyd.js';

export const STATSD_MAIN = path.join(ROOT, 'node_modules', 'statsd', 'stats.js');

export interface EtsyStatsd {
  readonly proc: ChildProcess;
  readonly udpPort: number;
  readonly mgmtPort: number;
  /** stdout + stderr so far. */
  output(): string;
  /** SIGKILL (no exit-time flush) and remove the config directory. Idempotent. */
  kill(): Promise<void>;
}

/**
 * Starts `node node_modules/statsd/stats.js <dir>/config.js` listening on
 * loopback, sending to the graphite backend at 127.0.0.1:carbonPort. `options`
 * are statsd config keys laid over the base config.
 */
export async function startEtsyStatsd(
  carbonPort: number,
  flushInterval: number,
  options: Record<string, unknown> = {},
): Promise<EtsyStatsd> {
  const udpPort = await freeUdpPort();
  const mgmtPort = await freePort();
  const dir = mkdtempSync(path.join(tmpdir(), 'tallyd-statsd-'));
  const file = path.join(dir, 'config.js');
  const config = {
    port: udpPort,
    address: '127.0.0.1',
    mgmt_port: mgmtPort,
    mgmt_address: '127.0.0.1',
    graphiteHost: '127.0.0.1',
    graphitePort: carbonPort,
    flushInterval,
    backends: ['./backends/graphite'],
    ...options,
  };
  // statsd evaluates `config = ` + the file: JSON is a valid object literal.
  writeFileSync(file, JSON.stringify(config, null, 2));
  const proc = spawn(process.execPath, [STATSD_MAIN, file], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  proc.stdout?.on('data', (d: Buffer) => (out += d.toString()));
  proc.stderr?.on('data', (d: Buffer) => (out += d.toString()));
  const exited = new Promise<void>((resolve) => proc.once('exit', () => resolve()));
  let killed: Promise<void> | null = null;
  const kill = (): Promise<void> => {
    killed ??= (async () => {
      if (proc.exitCode === null && proc.signalCode === null) {
        proc.kill('SIGKILL');
        await exited;
      }
      rmSync(dir, { recursive: true, force: true });
    })();
    return killed;
  };
  return { proc, udpPort, mgmtPort, output: () => out, kill };
}

/** Sends each datagram in order from one socket, each awaited before the next. */
export async function sendDatagrams(port: number, datagrams: readonly string[], host = '127.0.0.1'): Promise<void> {
  const sock = dgram.createSocket('udp4');
  try {
    for (const d of datagrams) {
      await new Promise<void>((resolve, reject) => sock.send(Buffer.from(d, 'utf8'), port, host, (err) => (err ? reject(err) : resolve())));
    }
  } finally {
    await new Promise<void>((r) => sock.close(() => r()));
  }
}

/**
 * Groups Carbon lines by flush. `flushTs` are the flushes' timestamps (the
 * ts of their numStats lines); a line belongs to the latest flush whose ts is
 * <= its own and less than one interval before it. statsd stamps its four
 * graphiteStats lines with the time of the send (a second or so after its
 * flush ts), so grouping by exact ts would split a statsd flush.
 */
export function groupByFlush(lines: readonly CarbonLine[], flushTs: readonly number[], intervalSec: number): Map<number, CarbonLine[]> {
  const sorted = [...flushTs].sort((a, b) => a - b);
  const groups = new Map<number, CarbonLine[]>(sorted.map((ts) => [ts, []]));
  for (const line of lines) {
    let owner: number | undefined;
    for (const ts of sorted) if (ts <= line.ts && line.ts - ts < intervalSec) owner = ts;
    if (owner !== undefined) groups.get(owner)?.push(line);
  }
  return groups;
}
