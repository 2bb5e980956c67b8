/**
 * The kernel's view of a UDP socket bound on 127.0.0.1/::1:<port>, from
 * /proc/net/udp and /proc/net/udp6: bytes queued for the reader and
 * datagrams dropped (the `drops` column: receive buffer full). The row goes
 * away with the socket, so a test samples it while the socket lives.
 */
import { readFileSync } from 'node:fs';

export interface UdpSocketStats {
  /** Bytes waiting in the receive queue. */
  rxQueue: number;
  /** Datagrams the kernel dropped for this socket. */
  drops: number;
}

/** Sums over every socket bound to the port (SO_REUSEPORT may give several); null when none is. */
export function udpSocketStats(port: number): UdpSocketStats | null {
  const hexPort = port.toString(16).toUpperCase().padStart(4, '0');
  let found = false;
  let rxQueue = 0;
  let drops = 0;
  for (const file of ['/proc/net/udp', '/proc/net/udp6']) {
    let text: string;
    try {
      text = readFileSync(file, 'utf8');
    } catch {
      continue;
    }
    for (const line of text.split('\n').slice(1)) {
      const cols = line.trim().split(/\s+/);
      const local = cols[1];
      if (!local || local.split(':')[1] !== hexPort) continue;
      found = true;
      rxQueue += parseInt((cols[4] ?? '0:0').split(':')[1] ?? '0', 16);
      drops += Number(cols[cols.length - 1] ?? 0);
    }
  }
  return found ? { rxQueue, drops } : null;
}
