/**
 * Loads tallyd's optional native addon (src/native/*.c, built into
 * build/Release/tallyd_native.node by `npm install` on Linux when a C
 * compiler is there; scripts/build-native.mjs). It holds the native UDP
 * reader (udp_reader.c, used by ingest/udp.ts), the ZeroMQ scanner
 * (zmq_scan.c, used by parse/zmq-fast.ts) and a reusable inflater
 * (zmq_inflate.c, used by parse/zmq-message.ts); without it UDP is read
 * with node:dgram and ZeroMQ messages with node:zlib and the general path
 * (JSON.parse), with the same results, slower. TALLYD_SKIP_NATIVE=1 in the
 * environment leaves it unloaded (as it leaves it unbuilt at install).
 *
 * TALLYD_NATIVE_ADDON=<path to a .node file> loads that build instead (the
 * AddressSanitizer build of scripts/fuzz-native-asan.sh); unset, nothing
 * changes.
 */
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

/** The package root (src/native/ and dist/native/ are both two levels below it). */
const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');

/** Where scripts/build-native.mjs keeps the output of a failed build. */
export const NATIVE_BUILD_LOG = path.join(ROOT, 'native-build.log');

/** How to get the addon built: prerequisites and the command (for the fallback warning and --check). */
export function nativeBuildHelp(): string {
  const log = existsSync(NATIVE_BUILD_LOG) ? `; the last build's output is in ${NATIVE_BUILD_LOG}` : '';
  return `to build it, install python3, make and g++ (Debian/Ubuntu: sudo apt-get install python3 make g++), ` +
    `then run \`npm rebuild tallyd\` (in a clone of tallyd: \`node scripts/build-native.mjs\`)${log}`;
}

/** A socket the UDP reader was opened on. */
export interface NativeUdpSocket {
  readonly handle: unknown;
  /** The bound port (the real one when 0 was asked). */
  readonly port: number;
  /** SO_RCVBUF as the kernel reports it (Linux doubles what it granted). */
  readonly rcvbuf: number;
  /** Datagrams read per call: buffer.length / slotSize, at most lengths.length. */
  readonly slots: number;
}

/** The UDP reader's callback(n, kind): what n means (udp_reader.c). */
export const UdpEvent = {
  /** n > 0 datagrams were read; n < 0: -errno of a failed read. */
  Read: 0,
  /** The socket reported an error (POLLERR), n = -errno of it (0: none kept); the reader cleared it and reads on. */
  PollError: 1,
  /** The same, but the reader could not poll again: it has stopped taking datagrams. */
  Stopped: 2,
} as const;

export interface TallydAddon {
  /**
   * Binds; throws an Error with .code (EADDRINUSE, ...). callback(n, kind)
   * with kind UdpEvent.Read gets n > 0 datagrams in buffer[i * slotSize ...],
   * lengths[i] bytes each (their real length: more than slotSize means cut
   * short), or n < 0, -errno of a failed read; see UdpEvent for the others.
   */
  open(
    family: 4 | 6, address: string, port: number, rcvbuf: number, reusePort: boolean,
    buffer: Buffer, slotSize: number, lengths: Int32Array, callback: (n: number, kind: number) => void,
  ): NativeUdpSocket;
  /** holdMs > 0: after a wakeup that emptied the queue, read again holdMs later instead of on the next datagram. */
  start(handle: unknown, holdMs?: number): void;
  close(handle: unknown): void;
  /**
   * See zmq_scan.c: n items, -1 not for the fast path, -2 the arrays are too small. With the intern table's
   * arrays (KeyInternTable.lookupTables()) it also fills entries: each name's entry, or -1.
   */
  zmqScan(
    buf: Buffer, start: number, end: number, seed: number,
    types: Uint8Array, values: Float64Array, rates: Float64Array, nameOff: Int32Array, nameLen: Int32Array, nameHash: Int32Array,
  ): number;
  zmqScan(
    buf: Buffer, start: number, end: number, seed: number,
    types: Uint8Array, values: Float64Array, rates: Float64Array, nameOff: Int32Array, nameLen: Int32Array, nameHash: Int32Array,
    entries: Int32Array, slots: Int32Array, slotHash: Int32Array, entryOff: Int32Array, entryNameLen: Int32Array, entryTagLen: Int32Array,
    arena: Buffer, maxProbe: number,
  ): number;
  /** See zmq_inflate.c: n bytes inflated into out, -1 out is too small, -2 let node:zlib decide. */
  zmqInflate(frame: Buffer, out: Buffer): number;
}

let loaded: TallydAddon | string | undefined;

/** The addon, or why it is not available. */
export function nativeAddon(): TallydAddon | string {
  if (loaded !== undefined) return loaded;
  if (process.env.TALLYD_SKIP_NATIVE === '1') {
    loaded = 'TALLYD_SKIP_NATIVE=1 is set';
    return loaded;
  }
  if (process.platform !== 'linux') {
    loaded = `it is built on Linux only (this is ${process.platform})`;
    return loaded;
  }
  try {
    // src/native/ and dist/native/ are both two levels below the package root.
    const file = process.env.TALLYD_NATIVE_ADDON || '../../build/Release/tallyd_native.node';
    loaded = createRequire(import.meta.url)(file) as TallydAddon;
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    loaded = e.code === 'MODULE_NOT_FOUND' ? 'it was not built (npm install builds it when python3, make and a C compiler are installed)' : `it did not load: ${e.message}`;
  }
  return loaded;
}
