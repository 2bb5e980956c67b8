/**
 * Loads the optional native UDP reader (src/native/udp_reader.c, built into
 * build/Release/tallyd_udp.node by `npm install` on Linux when a C compiler
 * is there; scripts/build-native.mjs). Without it, UDP servers read with
 * node:dgram. See the C file for the contract.
 */
import { createRequire } from 'node:module';

/** The socket a reader was opened on. */
export interface NativeUdpSocket {
  readonly handle: unknown;
  /** The bound port (the real one when 0 was asked). */
  readonly port: number;
  /** SO_RCVBUF as the kernel reports it (Linux doubles what it granted). */
  readonly rcvbuf: number;
  /** Datagrams read per call: buffer.length / slotSize, at most lengths.length. */
  readonly slots: number;
}

export interface NativeUdp {
  /**
   * Binds; throws an Error with .code (EADDRINUSE, ...). callback(n) gets
   * n > 0 datagrams in buffer[i * slotSize ...], lengths[i] bytes each (their
   * real length: more than slotSize means cut short), or n < 0, -errno of a
   * failed read.
   */
  open(
    family: 4 | 6, address: string, port: number, rcvbuf: number, reusePort: boolean,
    buffer: Buffer, slotSize: number, lengths: Int32Array, callback: (n: number) => void,
  ): NativeUdpSocket;
  start(handle: unknown): void;
  close(handle: unknown): void;
}

let loaded: NativeUdp | string | undefined;

/** The native reader, or why it is not available. */
export function nativeUdp(): NativeUdp | string {
  if (loaded !== undefined) return loaded;
  if (process.platform !== 'linux') {
    loaded = `it is built on Linux only (this is ${process.platform})`;
    return loaded;
  }
  try {
    // src/ingest/ and dist/ingest/ are both two levels below the package root.
    loaded = createRequire(import.meta.url)('../../build/Release/tallyd_udp.node') as NativeUdp;
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    loaded = e.code === 'MODULE_NOT_FOUND' ? 'it was not built (npm install builds it when a C compiler is installed)' : `it did not load: ${e.message}`;
  }
  return loaded;
}
