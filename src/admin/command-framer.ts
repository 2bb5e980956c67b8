/**
 * The console's line framing: one command per '\n'-terminated line, a line
 * may arrive in any number of chunks, and a line longer than maxLineBytes
 * ('\n' excluded) is refused, whether or not its end has arrived (a client
 * that never sends '\n' is not buffered without bound). What is left
 * without a '\n' can still be taken as a command (rest()): statsd takes every
 * chunk as a command, so `printf health | nc -N` gets its answer.
 */

const NL = 0x0a;

/** The longest console command line accepted, in bytes. */
export const MGMT_MAX_LINE_BYTES = 4096;

export class CommandFramer {
  private rem: Buffer = Buffer.alloc(0);

  constructor(private readonly maxLineBytes: number = MGMT_MAX_LINE_BYTES) {}

  /** The complete lines in chunk (without '\n', as ASCII), or null once a line is too long. */
  push(chunk: Buffer): string[] | null {
    const buf = this.rem.length === 0 ? chunk : Buffer.concat([this.rem, chunk]);
    const lines: string[] = [];
    let start = 0;
    for (let nl = buf.indexOf(NL); nl !== -1; nl = buf.indexOf(NL, start)) {
      if (nl - start > this.maxLineBytes) return null;
      lines.push(buf.toString('ascii', start, nl));
      start = nl + 1;
    }
    if (buf.length - start > this.maxLineBytes) return null;
    // Copied: the tail is at most maxLineBytes, and must not pin the chunk.
    this.rem = Buffer.from(buf.subarray(start));
    return lines;
  }

  /** Bytes waiting for their '\n'. */
  get pending(): number {
    return this.rem.length;
  }

  /** The unterminated rest as a command line (then forgotten), or null when there is none. */
  rest(): string | null {
    if (this.rem.length === 0) return null;
    const line = this.rem.toString('ascii');
    this.rem = Buffer.alloc(0);
    return line;
  }
}
