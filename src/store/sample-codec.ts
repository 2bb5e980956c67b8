/**
 * How timer samples are stored in Redis: float64 little-endian, packed, so
 * percentiles stay exact. The batcher packs them into a merge's ARGV
 * (aggregate/merge-args.ts); the flusher and the console unpack what the
 * period hashes hold. Both sides live here, with the store that owns the
 * format.
 */
import { endianness } from 'node:os';

/** Float64Array bytes are the platform's; on little-endian ones packing is a copy. */
const LITTLE_ENDIAN = endianness() === 'LE';

/** values[start, end) as float64 little-endian, exactly as writeDoubleLE writes each. */
export function packSamples(values: ArrayLike<number>, start = 0, end = values.length): Buffer {
  const n = end - start;
  const buf = Buffer.allocUnsafe(n * 8);
  if (LITTLE_ENDIAN && values instanceof Float64Array) {
    buf.set(new Uint8Array(values.buffer, values.byteOffset + start * 8, n * 8));
    return buf;
  }
  for (let i = 0; i < n; i++) buf.writeDoubleLE(values[start + i] as number, i * 8);
  return buf;
}

/** Appends the samples a packed field holds to into. */
export function unpackSamples(buf: Buffer, into: number[]): void {
  for (let off = 0; off + 8 <= buf.length; off += 8) into.push(buf.readDoubleLE(off));
}
