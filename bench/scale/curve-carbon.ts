/**
 * The scale curve's Carbon: a TCP server that reads Graphite plaintext and
 * keeps, per line timestamp (a period's boundary), when its first and last
 * line arrived, how many lines came, the `stats_counts.scale.<i>` values
 * (a line re-sent for the same period overwrites, as in Graphite, and is
 * counted as a duplicate), and the value of a few named lines: the steady
 * metrics and statsd's own (`processing_time`, `timestamp_lag`,
 * `udp_kernel_drops`, `numStats`). At 5M names a period is 10M lines, parsed
 * on the same 2 cores as what is measured: every other line costs a compare.
 */
import { PlaintextServer } from '../../test/helpers/plaintext-server.js';

const SCALE = 'stats_counts.scale.';

/** Lines whose value is kept by name, per period. */
export const WATCHED_PREFIXES = ['stats_counts.scale_steady.', 'stats.timers.scale_steady.', 'stats.statsd.', 'stats.gauges.statsd.', 'stats_counts.statsd.'];

export interface CurvePeriod {
  /** Date.now() of the first and last line with this timestamp. */
  first: number;
  last: number;
  lines: number;
  /** stats_counts.scale.<i>: value by name index (0 until seen), seen flags, distinct names seen, their sum. */
  values: Float64Array;
  seen: Uint8Array;
  distinct: number;
  sum: number;
  duplicates: number;
  /** Date.now() when the last missing scale name arrived. */
  completeAt: number;
  /** Watched lines, name -> last value. */
  named: Map<string, number>;
}

export class CurveCarbon extends PlaintextServer {
  readonly periods = new Map<number, CurvePeriod>();
  lines = 0;
  malformed = 0;
  private lastTsText = '';
  private lastPeriod: CurvePeriod | null = null;

  constructor(private readonly names: number) {
    super('latin1');
  }

  /** The named value of a period (null: no such line arrived). */
  value(ts: number, name: string): number | null {
    return this.periods.get(ts)?.named.get(name) ?? null;
  }

  protected onData(block: string, end: number): void {
    const now = Date.now();
    let from = 0;
    let n = 0;
    while (from < end) {
      let to = block.indexOf('\n', from);
      if (to < 0 || to > end) to = end;
      if (to > from) {
        this.onLine(block, from, to, now);
        n++;
      }
      from = to + 1;
    }
    this.lines += n;
  }

  private period(block: string, sp2: number, to: number, now: number): CurvePeriod | null {
    const len = to - sp2 - 1;
    if (len === this.lastTsText.length && block.startsWith(this.lastTsText, sp2 + 1) && this.lastPeriod) return this.lastPeriod;
    const text = block.slice(sp2 + 1, to);
    const ts = Number(text);
    if (!Number.isInteger(ts)) return null;
    let p = this.periods.get(ts);
    if (!p) {
      p = {
        first: now, last: now, lines: 0, values: new Float64Array(this.names), seen: new Uint8Array(this.names), distinct: 0, sum: 0,
        duplicates: 0, completeAt: 0, named: new Map(),
      };
      this.periods.set(ts, p);
    }
    this.lastTsText = text;
    this.lastPeriod = p;
    return p;
  }

  private onLine(block: string, from: number, to: number, now: number): void {
    const sp2 = block.lastIndexOf(' ', to - 1);
    if (sp2 <= from) {
      this.malformed++;
      return;
    }
    const p = this.period(block, sp2, to, now);
    if (!p) {
      this.malformed++;
      return;
    }
    p.last = now;
    p.lines++;
    if (block.charCodeAt(from) !== 0x73 /* s */) return;
    if (block.startsWith(SCALE, from)) {
      let i = 0;
      let at = from + SCALE.length;
      for (let c = block.charCodeAt(at); c >= 0x30 && c <= 0x39; c = block.charCodeAt(++at)) i = i * 10 + (c - 0x30);
      if (block.charCodeAt(at) !== 0x20 || i >= this.names) return; // stats_counts.scale.<i> only
      const vText = block.slice(at + 1, sp2);
      const v = vText.length === 1 ? vText.charCodeAt(0) - 0x30 : Number(vText);
      if (p.seen[i]) {
        p.duplicates++;
        p.sum -= p.values[i] ?? 0;
      } else {
        p.seen[i] = 1;
        p.distinct++;
        p.completeAt = now;
      }
      p.values[i] = v;
      p.sum += v;
      return;
    }
    for (const prefix of WATCHED_PREFIXES) {
      if (!block.startsWith(prefix, from)) continue;
      const sp1 = block.indexOf(' ', from);
      if (sp1 > from && sp1 < sp2) p.named.set(block.slice(from, sp1), Number(block.slice(sp1 + 1, sp2)));
      return;
    }
  }
}
