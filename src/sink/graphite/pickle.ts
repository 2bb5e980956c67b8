/**
 * Carbon's pickle protocol (graphitePicklePort, 2004): frames of a 4-byte
 * big-endian length and a pickle (protocol 2) of a list of
 * (name, (timestamp, value)) tuples, as carbon-relay and statsd's pickle
 * mode send them. Built from the outbox's plaintext lines, so text and pickle
 * deliver the same entries with the same guarantees. Names are BINUNICODE,
 * whole timestamps BININT (else BINFLOAT), values BINFLOAT: carbon's
 * receiver float()s both. Frames stay far below carbon's 1 MiB MAX_LENGTH.
 */

/** Metrics per frame (carbon-relay sends 500-metric pickles; each of ours is ~30 bytes + its name). */
export const METRICS_PER_FRAME = 500;

const PROTO = 0x80;
const EMPTY_LIST = 0x5d;
const MARK = 0x28;
const APPENDS = 0x65;
const BINUNICODE = 0x58;
const BININT = 0x4a;
const BINFLOAT = 0x47;
const TUPLE2 = 0x86;
const STOP = 0x2e;

export interface Datapoint {
  readonly name: string;
  readonly timestamp: number;
  readonly value: number;
}

/** `name value ts` -> a datapoint; null for a line that is not one (never produced by tallyd). */
export function parseLine(line: string): Datapoint | null {
  const b = line.lastIndexOf(' ');
  const a = b > 0 ? line.lastIndexOf(' ', b - 1) : -1;
  if (a <= 0) return null;
  const value = Number(line.slice(a + 1, b));
  const timestamp = Number(line.slice(b + 1));
  if (Number.isNaN(value) || !Number.isFinite(timestamp)) return null;
  return { name: line.slice(0, a), timestamp, value };
}

/** One pickled list of datapoints, without the length prefix. */
export function pickleDatapoints(points: readonly Datapoint[]): Buffer {
  const names = points.map((p) => Buffer.from(p.name, 'utf8'));
  let size = 2 + 1 + (points.length > 0 ? 2 : 0) + 1;
  for (const n of names) size += 1 + 4 + n.length + 9 + 9 + 2;
  const out = Buffer.alloc(size);
  let o = 0;
  out[o++] = PROTO;
  out[o++] = 2;
  out[o++] = EMPTY_LIST;
  if (points.length > 0) out[o++] = MARK;
  points.forEach((p, i) => {
    const name = names[i] as Buffer;
    out[o++] = BINUNICODE;
    o = out.writeUInt32LE(name.length, o);
    o += name.copy(out, o);
    if (Number.isInteger(p.timestamp) && p.timestamp >= -0x80000000 && p.timestamp <= 0x7fffffff) {
      out[o++] = BININT;
      o = out.writeInt32LE(p.timestamp, o);
    } else {
      out[o++] = BINFLOAT;
      o = out.writeDoubleBE(p.timestamp, o);
    }
    out[o++] = BINFLOAT;
    o = out.writeDoubleBE(p.value, o);
    out[o++] = TUPLE2;
    out[o++] = TUPLE2;
  });
  if (points.length > 0) out[o++] = APPENDS;
  out[o++] = STOP;
  return out.subarray(0, o);
}

/** Length-prefixed pickle frames for '\n'-terminated plaintext chunks; bad lines are counted in `skipped`. */
export function pickleFrames(chunks: readonly string[]): { frames: Buffer[]; skipped: number } {
  const frames: Buffer[] = [];
  let batch: Datapoint[] = [];
  let skipped = 0;
  const flush = (): void => {
    if (batch.length === 0) return;
    const body = pickleDatapoints(batch);
    const head = Buffer.alloc(4);
    head.writeUInt32BE(body.length, 0);
    frames.push(head, body);
    batch = [];
  };
  for (const chunk of chunks) {
    let start = 0;
    for (let nl = chunk.indexOf('\n'); nl !== -1; nl = chunk.indexOf('\n', start)) {
      const p = parseLine(chunk.slice(start, nl));
      start = nl + 1;
      if (p === null) skipped++;
      else if (batch.push(p) >= METRICS_PER_FRAME) flush();
    }
  }
  flush();
  return { frames, skipped };
}
