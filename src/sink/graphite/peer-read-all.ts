/**
 * Did the peer read everything we sent? Asked when the peer's FIN arrives
 * after our own (we half-closed once the payload was written), from the
 * kernel's view of our socket in /proc/net/tcp{,6}:
 *
 * - TIME_WAIT: the peer acknowledged our FIN, so every byte before it reached
 *   the peer's kernel while its socket was open (data arriving at a closed
 *   socket is answered with RST, never acknowledged), and it closed with an
 *   empty receive buffer (Linux sends RST, not FIN, when unread data is
 *   left). So the peer's application read to our EOF: 'proven'.
 * - any other state (CLOSING: the peer closed before our FIN reached it, so
 *   part of what we sent may still be in flight towards a closed socket), or
 *   no such socket (an RST already tore it down): 'unproven'.
 * - no /proc (not Linux): 'unknown'; the caller falls back to "a clean FIN
 *   after ours", which misses only a peer that closes between two of our
 *   segments with nothing unread.
 *
 * Cost: one synchronous read of /proc/net/tcp per delivery (a few MiB of
 * lines), so a line per open TCP socket on the host.
 */
import { readFileSync } from 'node:fs';
import { isIPv4 } from 'node:net';

export type ReadProof = 'proven' | 'unproven' | 'unknown';

export interface Endpoints {
  readonly localAddress: string;
  readonly localPort: number;
  readonly remoteAddress: string;
  readonly remotePort: number;
}

const TIME_WAIT = '06';

/** An address:port as /proc/net/tcp prints it: each 32-bit word of the address in host (little-endian) order. */
export function procAddress(address: string, port: number): string {
  const portHex = port.toString(16).toUpperCase().padStart(4, '0');
  if (isIPv4(address)) {
    const b = address.split('.').map(Number);
    return `${hex([b[3] ?? 0, b[2] ?? 0, b[1] ?? 0, b[0] ?? 0])}:${portHex}`;
  }
  const bytes = ipv6Bytes(address);
  let out = '';
  for (let w = 0; w < 16; w += 4) out += hex([bytes[w + 3] ?? 0, bytes[w + 2] ?? 0, bytes[w + 1] ?? 0, bytes[w] ?? 0]);
  return `${out}:${portHex}`;
}

function hex(bytes: number[]): string {
  return bytes.map((x) => x.toString(16).toUpperCase().padStart(2, '0')).join('');
}

function ipv6Bytes(address: string): number[] {
  let text = address.replace(/%.*$/, '');
  const tail = /(\d+\.\d+\.\d+\.\d+)$/.exec(text);
  if (tail?.[1]) {
    const b = tail[1].split('.').map(Number);
    text = text.slice(0, -tail[1].length) + `${(((b[0] ?? 0) << 8) | (b[1] ?? 0)).toString(16)}:${(((b[2] ?? 0) << 8) | (b[3] ?? 0)).toString(16)}`;
  }
  const [head = '', rest] = text.split('::');
  const left = head === '' ? [] : head.split(':');
  const right = rest === undefined || rest === '' ? [] : rest.split(':');
  const words = rest === undefined ? left : [...left, ...Array<string>(8 - left.length - right.length).fill('0'), ...right];
  const out: number[] = [];
  for (const w of words) {
    const v = parseInt(w, 16) || 0;
    out.push(v >> 8, v & 0xff);
  }
  return out;
}

/** The TCP state (two hex digits) of our socket in a /proc/net/tcp table, or null when it is not listed. */
export function findState(table: string, ends: Endpoints): string | null {
  const local = procAddress(ends.localAddress, ends.localPort);
  const remote = procAddress(ends.remoteAddress, ends.remotePort);
  for (const line of table.split('\n')) {
    const f = line.trim().split(/\s+/);
    if (f[1] === local && f[2] === remote) return f[3] ?? null;
  }
  return null;
}

export function peerReadAll(ends: Endpoints): ReadProof {
  const v4 = isIPv4(ends.remoteAddress);
  let table: string;
  try {
    table = readFileSync(v4 ? '/proc/net/tcp' : '/proc/net/tcp6', 'latin1');
  } catch {
    return 'unknown';
  }
  return findState(table, ends) === TIME_WAIT ? 'proven' : 'unproven';
}
