/** Outbox chunks: Graphite lines joined into '\n'-terminated strings of about CHUNK_BYTES. */
export const CHUNK_BYTES = 256 * 1024;

export function chunkLines(lines: readonly string[], maxBytes = CHUNK_BYTES): string[] {
  const chunks: string[] = [];
  let cur: string[] = [];
  let size = 0;
  for (const line of lines) {
    cur.push(line);
    size += line.length + 1;
    if (size >= maxBytes) {
      chunks.push(cur.join('\n') + '\n');
      cur = [];
      size = 0;
    }
  }
  if (cur.length > 0) chunks.push(cur.join('\n') + '\n');
  return chunks;
}
