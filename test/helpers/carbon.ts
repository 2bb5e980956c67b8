/**
 * A Carbon stand-in: a TCP server that records every plaintext line it gets
 * (`name value ts`). Tests read what tallyd (or Etsy statsd) really sent.
 */
import net from 'node:net';
import { PlaintextServer } from './plaintext-server.js';

export interface CarbonLine {
  name: string;
  value: string;
  ts: number;
}

export class CarbonListener extends PlaintextServer {
  readonly lines: CarbonLine[] = [];
  /** Lines that did not split into `name value ts`. */
  readonly malformed: string[] = [];

  constructor() {
    super('utf8');
  }

  protected onData(text: string, end: number): void {
    for (const line of text.slice(0, end).split('\n')) {
      const parts = line.split(' ');
      if (parts.length === 3) this.lines.push({ name: parts[0] as string, value: parts[1] as string, ts: Number(parts[2]) });
      else this.malformed.push(line);
    }
  }

  /** Values of a metric by timestamp, in arrival order. */
  series(name: string): CarbonLine[] {
    return this.lines.filter((l) => l.name === name);
  }

  /** Sum of a metric's values over all periods received. */
  sum(name: string): number {
    return this.series(name).reduce((a, l) => a + Number(l.value), 0);
  }

  /**
   * Waits until every name has a line that `ok` accepts (default: any line). With shards, each name's lines come from
   * its own shard's leader, so one name's arrival says nothing of another's: wait for each before comparing. Throws
   * naming the ones still missing.
   */
  async waitForEach(names: readonly string[], timeoutMs = 10_000, ok: (line: CarbonLine) => boolean = () => true): Promise<void> {
    const missing = (): string[] => names.filter((n) => !this.series(n).some(ok));
    await this.waitFor(() => missing().length === 0, timeoutMs, 'every name').catch(() => {
      throw new Error(`timed out after ${timeoutMs} ms waiting for a line of each of ${names.length} names; missing: ${missing().join(', ')}`);
    });
  }

  async waitFor(pred: () => boolean, timeoutMs = 10_000, what = 'condition'): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!pred()) {
      if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
      await new Promise((r) => setTimeout(r, 50));
    }
  }
}

export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/** Resolve a free TCP port by binding port 0 and closing. */
export async function freePort(): Promise<number> {
  const s = net.createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', () => r()));
  const addr = s.address();
  const port = typeof addr === 'object' && addr ? addr.port : 0;
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}

/** Sleep until `offsetMs` after the next wall-clock multiple of intervalMs (a fresh flush period). */
export async function alignToPeriod(intervalMs: number, offsetMs = 150): Promise<number> {
  const now = Date.now();
  const next = (Math.floor(now / intervalMs) + 1) * intervalMs;
  await sleep(next - now + offsetMs);
  return next;
}

/** A free UDP port on loopback (bind 0, read, close). */
export async function freeUdpPort(): Promise<number> {
  const { createSocket } = await import('node:dgram');
  const s = createSocket('udp4');
  await new Promise<void>((r) => s.bind(0, '127.0.0.1', () => r()));
  const port = s.address().port;
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}

/** Send statsd lines over UDP, one datagram per entry. */
export async function sendUdp(port: number, datagrams: readonly string[]): Promise<void> {
  const { createSocket } = await import('node:dgram');
  const s = createSocket('udp4');
  for (const d of datagrams) await new Promise<void>((r, j) => s.send(d, port, '127.0.0.1', (e) => (e ? j(e) : r())));
  await new Promise<void>((r) => s.close(() => r()));
}
