/**
 * A real socket error on one of this process's UDP sockets: a Python child
 * gets a copy of the socket's descriptor (stdio fd 3), turns IP_RECVERR on
 * and sends one datagram from it to a closed port on loopback. The kernel
 * answers with an ICMP port unreachable, which sets the socket's error
 * (ECONNREFUSED) and raises POLLERR for every holder of the socket, as any
 * ICMP error would on a connected socket. With keepErrQueue false the child
 * turns IP_RECVERR off again, which empties the error queue and leaves only
 * the pending error (SO_ERROR); with true the queue keeps its entry too.
 * Needs /usr/bin/python3 (CI installs it for the ZeroMQ test).
 */
import { spawn } from 'node:child_process';
import { readdirSync, readFileSync, readlinkSync } from 'node:fs';
import { freeUdpPort } from './carbon.js';

const PYTHON3 = '/usr/bin/python3';

const CHILD = `
import socket, sys
IP_RECVERR = 11
s = socket.socket(fileno=3)
s.setsockopt(socket.IPPROTO_IP, IP_RECVERR, 1)
s.sendto(b"x", ("127.0.0.1", int(sys.argv[1])))
if sys.argv[2] == "0":
    s.setsockopt(socket.IPPROTO_IP, IP_RECVERR, 0)
s.close()
`;

/** The descriptor of this process's UDP socket bound to 127.0.0.1:<port> (via its inode in /proc/net/udp). */
export function udpSocketFd(port: number): number {
  const hexPort = port.toString(16).toUpperCase().padStart(4, '0');
  const row = readFileSync('/proc/net/udp', 'utf8')
    .split('\n')
    .slice(1)
    .map((l) => l.trim().split(/\s+/))
    .find((cols) => cols[1] === `0100007F:${hexPort}`);
  if (!row?.[9]) throw new Error(`no udp socket on 127.0.0.1:${port} in /proc/net/udp`);
  const link = `socket:[${row[9]}]`;
  for (const fd of readdirSync('/proc/self/fd')) {
    try {
      if (readlinkSync(`/proc/self/fd/${fd}`) === link) return Number(fd);
    } catch {
      // a descriptor closed meanwhile
    }
  }
  throw new Error(`the udp socket on 127.0.0.1:${port} (${link}) is not this process's`);
}

/** Raises ECONNREFUSED on the socket behind fd (see above); resolves once the child has exited 0. */
export async function provokeSocketError(fd: number, keepErrQueue: boolean): Promise<void> {
  const closedPort = await freeUdpPort();
  const child = spawn(PYTHON3, ['-c', CHILD, String(closedPort), keepErrQueue ? '1' : '0'], {
    stdio: ['ignore', 'ignore', 'pipe', fd],
    env: { ...process.env, LD_PRELOAD: undefined }, // not the fuzz pass's sanitizer runtime: Python is not under test
  });
  let err = '';
  child.stderr?.on('data', (d: Buffer) => (err += d.toString()));
  const code = await new Promise<number | null>((resolve, reject) => {
    child.on('error', reject);
    child.on('close', resolve);
  });
  if (code !== 0) throw new Error(`${PYTHON3} exited ${code}: ${err}`);
}

/** How many descriptors this process has open that are UDP sockets (their inodes in /proc/net/udp{,6}). */
export function udpFdCount(): number {
  const inodes = new Set<string>();
  for (const file of ['/proc/net/udp', '/proc/net/udp6']) {
    for (const line of readFileSync(file, 'utf8').split('\n').slice(1)) {
      const inode = line.trim().split(/\s+/)[9];
      if (inode) inodes.add(`socket:[${inode}]`);
    }
  }
  let n = 0;
  for (const fd of readdirSync('/proc/self/fd')) {
    try {
      if (inodes.has(readlinkSync(`/proc/self/fd/${fd}`))) n++;
    } catch {
      // a descriptor closed meanwhile
    }
  }
  return n;
}
