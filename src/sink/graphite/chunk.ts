/** Outbox chunks: Graphite lines joined into '\n'-terminated strings of about CHUNK_BYTES. */
export const CHUNK_BYTES = 256 * 1024;

/** Collects lines into chunks as they are encoded, so a big period never holds every line as its own string. */
export class LineChunker {
  readonly chunks: string[] = [];
  private cur: string[] = [];
  private size = 0;
  lines = 0;

  constructor(private readonly maxBytes = CHUNK_BYTES) {}

  add(line: string): void {
    this.cur.push(line);
    this.lines++;
    this.size += line.length + 1;
    if (this.size >= this.maxBytes) {
      this.chunks.push(this.cur.join('\n') + '\n');
      this.cur = [];
      this.size = 0;
    }
  }

  finish(): string[] {
    if (this.cur.length > 0) this.chunks.push(this.cur.join('\n') + '\n');
    this.cur = [];
    this.size = 0;
    return this.chunks;
  }
}

export function chunkLines(lines: readonly string[], maxBytes = CHUNK_BYTES): string[] {
  const c = new LineChunker(maxBytes);
  for (const line of lines) c.add(line);
  return c.finish();
}
