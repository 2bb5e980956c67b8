/**
 * A console listing (statsd's `util.inspect(obj)` followed by "\nEND\n\n")
 * written in pieces: byte for byte what inspect would print, without
 * building the whole dump as one string. A small object is inspected as it
 * is; a large one (always multi-line in inspect) entry by entry, each entry
 * formatted by inspect in the same indentation it has inside the object.
 */
import { inspect } from 'node:util';

/** The narrow view of a socket a listing needs. */
export interface ListingOut {
  readonly destroyed: boolean;
  write(text: string): boolean;
  once(event: 'drain' | 'close', fn: () => void): unknown;
  off(event: 'drain' | 'close', fn: () => void): unknown;
  destroy(): void;
}

/**
 * Default ms a listing waits for the client to read before it gives up and
 * closes the connection (mgmtWriteTimeout): a client that asks and never
 * reads must not hold a console slot (mgmtMaxConcurrent) for ever.
 */
export const MGMT_WRITE_TIMEOUT_MS = 10_000;

/** Up to this many names the object is inspected whole (inspect may put it on one line). */
const WHOLE_MAX_ENTRIES = 64;
/** Bytes of formatted text gathered before a write. */
const PIECE_BYTES = 64 * 1024;

/**
 * Writes text; when the socket's buffer is full, waits until it drains (or
 * the socket closes), at most timeoutMs: then the socket is destroyed.
 */
export function writeWhenReady(out: ListingOut, text: string, timeoutMs = MGMT_WRITE_TIMEOUT_MS): Promise<void> | undefined {
  if (out.write(text)) return undefined;
  return new Promise((resolve) => {
    const done = (): void => {
      clearTimeout(timer);
      out.off('drain', done);
      out.off('close', done);
      resolve();
    };
    const timer = setTimeout(() => {
      out.destroy();
      done();
    }, timeoutMs);
    out.once('drain', done);
    out.once('close', done);
  });
}

/** One `key: value` entry as inspect prints it inside a multi-line object. */
export function inspectEntry(key: string, value: unknown): string {
  const one = inspect({ [key]: value });
  return one.startsWith('{ ') ? one.slice(2, -2) : one.slice(4, -2);
}

export async function writeListing(out: ListingOut, obj: Record<string, unknown>, timeoutMs = MGMT_WRITE_TIMEOUT_MS): Promise<void> {
  const keys = Object.keys(obj);
  if (keys.length <= WHOLE_MAX_ENTRIES) {
    await writeWhenReady(out, `${inspect(obj)}\nEND\n\n`, timeoutMs);
    return;
  }
  let piece = '{\n  ';
  for (let i = 0; i < keys.length; i++) {
    if (out.destroyed) return;
    const key = keys[i] as string;
    piece += (i === 0 ? '' : ',\n  ') + inspectEntry(key, obj[key]);
    if (piece.length >= PIECE_BYTES) {
      await writeWhenReady(out, piece, timeoutMs);
      piece = '';
    }
  }
  await writeWhenReady(out, `${piece}\n}\nEND\n\n`, timeoutMs);
}
