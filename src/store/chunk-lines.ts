/**
 * The line count of an outbox chunk ('\n'-ended Graphite lines), sent with
 * the chunk to the scripts that XADD it (includes/outbox.lua records it as
 * the entry's `n`, which the outbox bound counts as dropped lines).
 */
export function chunkLineCount(chunk: string): number {
  let n = 0;
  for (let at = chunk.indexOf('\n'); at >= 0; at = chunk.indexOf('\n', at + 1)) n++;
  return n;
}
