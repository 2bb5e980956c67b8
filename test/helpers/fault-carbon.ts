/**
 * Carbon stand-ins that misbehave, recording plaintext lines as CarbonListener
 * does (`name value ts`):
 *
 * - ResettingCarbon records the complete lines within the first N bytes of a
 *   connection, then resets it (RST, socket.resetAndDestroy()): whatever came
 *   after byte N, in the same read or still in the buffers, is lost with the
 *   connection. It does so K times (K connections), then behaves.
 * - StalledCarbon accepts and never reads (the connection stays open, the
 *   window fills); goAway() destroys its connections and frees the port, and
 *   replaceWithGood() puts a CarbonListener on the same port.
 */
import net from 'node:net';
import { CarbonListener, type CarbonLine } from './carbon.js';

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
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, '127.0.0.1', () => resolve());
    });
    const addr = server.address();
    this.port = typeof addr === 'object' && addr ? addr.port : port;
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

export class ResettingCarbon extends RecordingServer {
  /** Connections reset so far. */
  resets = 0;

  /**
   * @param resetAfterBytes N: a connection is reset once it has read this many bytes
   * @param timesToReset K: resets before it behaves
   */
  constructor(
    readonly resetAfterBytes: number,
    readonly timesToReset: number,
  ) {
    super();
  }

  start(port = 0): Promise<number> {
    const server = net.createServer((sock) => {
      this.track(sock);
      // Decide per connection: once K resets are used up, later connections behave.
      const willReset = this.resets + this.pendingResets() < this.timesToReset;
      if (willReset) this.armed.add(sock);
      let read = 0;
      let rest = '';
      sock.on('data', (d: Buffer) => {
        if (!this.armed.has(sock)) {
          rest = parseLines(rest + d.toString('utf8'), this.lines);
          return;
        }
        // Only the first N bytes count as read: a line that straddles N dies with the connection.
        const take = Math.min(d.length, this.resetAfterBytes - read);
        read += take;
        rest = parseLines(rest + d.toString('utf8', 0, take), this.lines);
        if (read >= this.resetAfterBytes) {
          this.armed.delete(sock);
          this.resets++;
          sock.resetAndDestroy();
        }
      });
      sock.on('close', () => this.armed.delete(sock));
    });
    return this.listen(server, port);
  }

  private readonly armed = new Set<net.Socket>();

  private pendingResets(): number {
    return this.armed.size;
  }

  /** Every reset used up (it now behaves). */
  get done(): boolean {
    return this.resets >= this.timesToReset;
  }
}

export class StalledCarbon extends RecordingServer {
  async start(port = 0): Promise<number> {
    // pauseOnConnect: the socket is never read, so the peer's writes fill the buffers and stall.
    const server = net.createServer({ pauseOnConnect: true }, (sock) => this.track(sock));
    return this.listen(server, port);
  }

  /** Connections currently held open without reading. */
  get open(): number {
    return this.conns.size;
  }

  /** Drops every held connection and frees the port (nothing it held was read). */
  goAway(): Promise<void> {
    return this.stop();
  }

  /** goAway(), then a good CarbonListener on the same port. */
  async replaceWithGood(): Promise<CarbonListener> {
    const port = this.port;
    await this.goAway();
    const good = new CarbonListener();
    await good.start(port);
    return good;
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
