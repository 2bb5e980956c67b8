/**
 * The TCP side of a Carbon stand-in: listens on loopback, cuts what each
 * connection sends into whole Graphite plaintext lines (`name value ts\n`,
 * the unterminated rest kept for the next chunk) and hands them to the
 * subclass a block at a time; stop() drops every connection and closes.
 * What a line means is the subclass's business: CarbonListener
 * (test/helpers/carbon.ts) records each one, the bench's Carbons
 * (bench/lib/carbon-tally.ts, bench/scale/curve-carbon.ts) keep sums.
 */
import net from 'node:net';

export abstract class PlaintextServer {
  port = 0;
  private server: net.Server | null = null;
  private readonly conns = new Set<net.Socket>();

  /** @param encoding latin1 skips UTF-8 decoding where only ASCII lines count (the benches) */
  protected constructor(private readonly encoding: 'utf8' | 'latin1') {}

  /** `text` holds whole lines up to `end`, the offset of the last line's '\n'; what follows it is not theirs. */
  protected abstract onData(text: string, end: number): void;

  async start(port = 0): Promise<number> {
    const server = net.createServer((sock) => {
      this.conns.add(sock);
      let rest = '';
      sock.setEncoding(this.encoding);
      sock.on('data', (chunk: string) => {
        const text = rest + chunk;
        const cut = text.lastIndexOf('\n');
        rest = text.slice(cut + 1);
        if (cut >= 0) this.onData(text, cut);
      });
      sock.on('error', () => undefined);
      sock.on('close', () => this.conns.delete(sock));
    });
    this.server = server;
    this.port = await listenLoopback(server, port);
    return this.port;
  }

  async stop(): Promise<void> {
    for (const s of this.conns) s.destroy();
    const server = this.server;
    this.server = null;
    if (server) await new Promise<void>((r) => server.close(() => r()));
  }
}

/** Listens on 127.0.0.1:port (0: any free port); resolves with the port bound, rejects if listening fails. */
export async function listenLoopback(server: net.Server, port: number): Promise<number> {
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, '127.0.0.1', () => resolve());
  });
  const addr = server.address();
  return typeof addr === 'object' && addr ? addr.port : port;
}
