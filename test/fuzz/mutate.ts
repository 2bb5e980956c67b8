/**
 * Inputs for the native fuzz pass (native-asan.ts): a seeded PRNG and the
 * usual mutations of a good input (bit flips, byte changes, truncation,
 * insertion, duplication), into Buffers of their own allocation so that
 * AddressSanitizer sees a read one byte past the end.
 */

/** mulberry32: small, seeded, good enough to pick inputs. */
export function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export class Gen {
  readonly next: () => number;
  constructor(seed: number) {
    this.next = rng(seed);
  }
  /** An integer in [0, n). */
  int(n: number): number {
    return Math.floor(this.next() * n);
  }
  pick<T>(items: readonly T[]): T {
    return items[this.int(items.length)]!;
  }
  bytes(n: number): Buffer {
    const b = exact(n);
    for (let i = 0; i < n; i++) b[i] = this.int(256);
    return b;
  }

  /** One to four random mutations of input (never the input itself). */
  mutate(input: Buffer): Buffer {
    let b = Buffer.from(input);
    const rounds = 1 + this.int(4);
    for (let r = 0; r < rounds; r++) {
      const at = b.length === 0 ? 0 : this.int(b.length);
      switch (this.int(6)) {
        case 0: // bit flip
          if (b.length > 0) b[at] = b[at]! ^ (1 << this.int(8));
          break;
        case 1: // byte set to an interesting value
          if (b.length > 0) b[at] = this.pick([0, 0x0a, 0x22, 0x2c, 0x3a, 0x5b, 0x5d, 0x7b, 0x7d, 0x5c, 0x7c, 0x80, 0xff, 0x30, 0x2d, 0x65]);
          break;
        case 2: // cut short
          b = b.subarray(0, at);
          break;
        case 3: // insert random bytes
          b = Buffer.concat([b.subarray(0, at), this.bytes(1 + this.int(8)), b.subarray(at)]);
          break;
        case 4: // duplicate a slice
          b = Buffer.concat([b.subarray(0, at), b.subarray(at, at + 1 + this.int(32)), b.subarray(at)]);
          break;
        default: // remove a slice
          b = Buffer.concat([b.subarray(0, at), b.subarray(at + 1 + this.int(16))]);
      }
    }
    return exact(b);
  }
}

/**
 * A Buffer that is its own allocation (not a slice of Node's 8 KiB pool) holding a copy of src, or n zero bytes:
 * a read past its end is a read past a malloc'd block, which AddressSanitizer reports.
 */
export function exact(src: Buffer | number): Buffer {
  const n = typeof src === 'number' ? src : src.length;
  const b = Buffer.allocUnsafeSlow(n);
  if (typeof src === 'number') b.fill(0);
  else src.copy(b);
  return b;
}

/** Every prefix of input, the empty one included, each its own allocation. */
export function* truncations(input: Buffer): Generator<Buffer> {
  for (let i = 0; i < input.length; i++) yield exact(input.subarray(0, i));
}
