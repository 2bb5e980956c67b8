/**
 * A Carbon stand-in for fault tests, recording plaintext lines as
 * CarbonListener does (`name value ts`), that also tells how many
 * connections are open: GoodCarbon, to wait for a peer's close. (The Carbons
 * that reset or stall live in the tests that use them, carbon-faults.test.)
 */
import net from 'node:net';
import type { CarbonLine } from './carbon.js';
import { listenLoopback } from './plaintext-server.js';

/** Appends the complete lines of `text` to `into`; returns the unterminated rest. */
export function parseLines(text: string, into: CarbonLine[]): string {
  let rest = text;
  let i: number;
  while ((i = rest.indexOf('\n')) !== -1) {
    const line = rest.slice(0, i);
    rest = rest.slice(i + 1);
    const parts = line.split(' ');
    if (parts.length === 3) into.push({ name: parts[0] as string, value: parts[1] as string, ts: Number(parts[2]) });
  }
  return rest;
}

abstract class RecordingServer {
  readonly lines: CarbonLine[] = [];
  protected server: net.Server | null = null;
  protected readonly conns = new Set<net.Socket>();
  port = 0;
  /** Connections accepted so far. */
  accepted = 0;

  protected async listen(server: net.Server, port: number): Promise<number> {
    this.server = server;
    this.port = await listenLoopback(server, port);
    return this.port;
  }

  protected track(sock: net.Socket): void {
    this.accepted++;
    this.conns.add(sock);
    sock.on('error', () => undefined);
    sock.on('close', () => this.conns.delete(sock));
  }

  async stop(): Promise<void> {
    for (const s of this.conns) s.destroy();
    this.conns.clear();
    const server = this.server;
    this.server = null;
    if (server) await new Promise<void>((r) => server.close(() => r()));
  }

  series(name: string): CarbonLine[] {
    return this.lines.filter((l) => l.name === name);
  }
}

/** A well-behaved Carbon that also tells how many connections are open (to wait for a peer's close). */
export class GoodCarbon extends RecordingServer {
  start(port = 0): Promise<number> {
    const server = net.createServer((sock) => {
      this.track(sock);
      let rest = '';
      sock.setEncoding('utf8');
      sock.on('data', (d: string) => (rest = parseLines(rest + d, this.lines)));
    });
    return this.listen(server, port);
  }

  get open(): number {
    return this.conns.size;
  }

  sum(name: string): number {
    return this.series(name).reduce((a, l) => a + Number(l.value), 0);
  }
}
