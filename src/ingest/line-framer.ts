/**
 * TCP line framing: turns a stream of chunks into regions of whole
 * '\n'-terminated lines, keeping the incomplete tail in a Buffer remainder
 * across chunks and capping line length.
 *
 * - Fast path: no remainder and no line in the chunk can be too long (the
 *   region is at most maxLineLength bytes) -> the chunk itself, up to and
 *   including its last '\n', is handed up without copying.
 * - A line longer than maxLineLength bytes ('\n' excluded) is dropped, wherever
 *   the chunk boundaries fall: onOverlong(length, head) once per dropped line,
 *   when its end is seen, with its first bytes (up to OVERLONG_HEAD_BYTES) for
 *   the log; framing resumes after its '\n'.
 * - end() hands up an unterminated last line (a client closing without a
 *   final '\n').
 *
 * Regions passed to onLines and onOverlong are only valid during the call:
 * the remainder buffer is reused.
 */

const NL = 0x0a;
/** How much of a dropped line onOverlong gets to quote. */
export const OVERLONG_HEAD_BYTES = 200;

export class LineFramer {
  private rem: Buffer | null = null;
  private remLen = 0;
  /** Inside an overlong line: skip bytes until its '\n'. */
  private discarding = false;
  private discarded = 0;
  /** The first bytes of the line being discarded (or just found too long), for onOverlong. */
  private readonly head = Buffer.alloc(OVERLONG_HEAD_BYTES);
  private headLen = 0;

  constructor(
    private readonly maxLineLength: number,
    private readonly onLines: (buf: Buffer, start: number, end: number) => void,
    private readonly onOverlong: (bytes: number, head: Buffer, headStart: number, headEnd: number) => void,
  ) {}

  push(chunk: Buffer): void {
    const len = chunk.length;
    let pos = 0;
    if (this.discarding || this.remLen > 0) {
      const nl = chunk.indexOf(NL);
      if (nl === -1) {
        this.holdTail(chunk, 0);
        return;
      }
      if (this.discarding) {
        this.discarding = false;
        this.appendHead(chunk, 0, nl);
        this.onOverlong(this.discarded + nl, this.head, 0, this.headLen);
      } else if (this.remLen + nl > this.maxLineLength) {
        this.saveHead(chunk, 0, nl);
        this.onOverlong(this.remLen + nl, this.head, 0, this.headLen);
        this.remLen = 0;
      } else {
        const rem = this.append(chunk, 0, nl + 1);
        const remLen = this.remLen;
        this.remLen = 0;
        this.onLines(rem, 0, remLen);
      }
      pos = nl + 1;
    }
    const last = chunk.lastIndexOf(NL);
    if (last >= pos) {
      if (last + 1 - pos <= this.maxLineLength) this.onLines(chunk, pos, last + 1);
      else this.emitChecked(chunk, pos, last + 1);
      pos = last + 1;
    }
    if (pos < len) this.holdTail(chunk, pos);
  }

  /** Bytes allocated for the remainder: at most max(maxLineLength + 1, 256), whatever the input. */
  get remainderCapacity(): number {
    return this.rem?.length ?? 0;
  }

  /** Flush the unterminated last line, if any. */
  end(): void {
    if (this.discarding) {
      this.discarding = false;
      this.onOverlong(this.discarded, this.head, 0, this.headLen);
    } else if (this.remLen > 0) {
      const remLen = this.remLen;
      this.remLen = 0;
      this.onLines(this.rem!, 0, remLen);
    }
    this.discarded = 0;
  }

  /** Hand up the whole lines of buf[start, end) (ends with '\n'), dropping overlong ones. */
  private emitChecked(buf: Buffer, start: number, end: number): void {
    const max = this.maxLineLength;
    let runStart = start;
    let s = start;
    while (s < end) {
      const nl = buf.indexOf(NL, s);
      if (nl - s > max) {
        if (runStart < s) this.onLines(buf, runStart, s);
        this.onOverlong(nl - s, buf, s, s + Math.min(nl - s, OVERLONG_HEAD_BYTES));
        runStart = nl + 1;
      }
      s = nl + 1;
    }
    if (runStart < end) this.onLines(buf, runStart, end);
  }

  /** Keep chunk[start..] (no '\n' in it) as the start of, or more of, an incomplete line. */
  private holdTail(chunk: Buffer, start: number): void {
    const n = chunk.length - start;
    if (this.discarding) {
      this.discarded += n;
      this.appendHead(chunk, start, chunk.length);
    } else if (this.remLen + n > this.maxLineLength) {
      this.saveHead(chunk, start, chunk.length);
      this.discarding = true;
      this.discarded = this.remLen + n;
      this.remLen = 0;
    } else {
      this.append(chunk, start, chunk.length);
    }
  }

  /** Keep the first bytes of the remainder followed by chunk[start, end) as the head of an overlong line. */
  private saveHead(chunk: Buffer, start: number, end: number): void {
    this.headLen = this.rem === null ? 0 : this.rem.copy(this.head, 0, 0, Math.min(this.remLen, OVERLONG_HEAD_BYTES));
    this.appendHead(chunk, start, end);
  }

  /** More of the overlong line's first bytes, while there is room in the head. */
  private appendHead(chunk: Buffer, start: number, end: number): void {
    const room = OVERLONG_HEAD_BYTES - this.headLen;
    if (room > 0) this.headLen += chunk.copy(this.head, this.headLen, start, Math.min(end, start + room));
  }

  /** Copy chunk[start, end) after the remainder, growing its buffer; returns the buffer. */
  private append(chunk: Buffer, start: number, end: number): Buffer {
    const need = this.remLen + (end - start);
    let rem = this.rem;
    if (rem === null || rem.length < need) {
      const grown = Buffer.allocUnsafe(Math.max(need, Math.min(2 * (rem?.length ?? 0), this.maxLineLength + 1), 256));
      if (rem !== null) rem.copy(grown, 0, 0, this.remLen);
      this.rem = rem = grown;
    }
    chunk.copy(rem, this.remLen, start, end);
    this.remLen = need;
    return rem;
  }
}
