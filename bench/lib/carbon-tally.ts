/**
 * A Carbon stand-in for the bench: a TCP server that reads Graphite
 * plaintext (`name value ts\n`) and keeps only what loss accounting needs,
 * name by name: sums of stats_counts.bench.c.N, stats.timers.bench.t.N.count
 * and stats.sets.bench.s.N.count over all flushes, and the last
 * stats.gauges.bench.g.N. It also notes when each flush's burst of lines
 * arrived, so the trial knows when the flush after the load is in. For the
 * scale curves it can also note when each period's lines arrived and hand
 * chosen lines to a callback.
 */
import { PlaintextServer } from '../../test/helpers/plaintext-server.js';
import { emptyTotals, type Totals } from './load.js';

/** Lines arriving after this much silence start a new flush burst. */
const BURST_GAP_MS = 400;

const PATTERNS: ReadonlyArray<readonly [prefix: string, suffix: string, type: keyof Totals]> = [
  ['stats_counts.bench.c.', '', 'c'],
  ['stats.timers.bench.t.', '.count', 'ms'],
  ['stats.sets.bench.s.', '.count', 's'],
  ['stats.gauges.bench.g.', '', 'g'],
];

/** When the lines stamped with one period's timestamp arrived (Date.now()). */
export interface PeriodArrival {
  first: number;
  last: number;
  lines: number;
}

export interface TallyOptions {
  /** Track every line's timestamp in `periods` (the scale curves; costs a parse per line). */
  trackPeriods?: boolean;
  /** Called for each line whose name starts with `prefix`, with its arrival time. */
  watch?: { prefix: string; fn: (name: string, value: number, ts: number, now: number) => void };
}

export interface Burst {
  /** Date.now() of its first and last line. */
  start: number;
  end: number;
  lines: number;
}

export class CarbonTally extends PlaintextServer {
  readonly received: Totals;
  readonly bursts: Burst[] = [];
  /** By line timestamp (unix s), with trackPeriods. */
  readonly periods = new Map<number, PeriodArrival>();
  lines = 0;
  /** Lines that look like ours but don't parse (a bug in a server or here). */
  malformed = 0;

  constructor(
    private readonly names: number,
    private readonly opts: TallyOptions = {},
  ) {
    super('latin1'); // Graphite plaintext is ASCII; latin1 skips UTF-8 decoding
    this.received = emptyTotals(names);
  }

  protected onData(text: string, end: number): void {
    this.onLines(text.slice(0, end));
  }

  private onLines(block: string): void {
    const now = Date.now();
    let n = 0;
    let from = 0;
    while (from < block.length) {
      let to = block.indexOf('\n', from);
      if (to < 0) to = block.length;
      if (to > from) {
        if (this.opts.trackPeriods || this.opts.watch) this.track(block, from, to, now);
        this.onLine(block, from, to);
        n++;
      }
      from = to + 1;
    }
    this.lines += n;
    const last = this.bursts.at(-1);
    if (last && now - last.end < BURST_GAP_MS) {
      last.end = now;
      last.lines += n;
    } else {
      this.bursts.push({ start: now, end: now, lines: n });
    }
  }

  /**
   * A period's lines come in a run with the same timestamp: the text of the
   * last one seen and its PeriodArrival are kept, so most lines cost a
   * compare, not a slice, a Number() and a Map lookup (the runner shares the
   * two cores with the server it measures).
   */
  private lastTsText = '';
  private lastTs = NaN;
  private lastPeriod: PeriodArrival | null = null;

  private track(block: string, from: number, to: number, now: number): void {
    const sp2 = block.lastIndexOf(' ', to - 1);
    if (sp2 <= from) return;
    const tsLen = to - sp2 - 1;
    let ts: number;
    if (tsLen === this.lastTsText.length && block.startsWith(this.lastTsText, sp2 + 1)) {
      ts = this.lastTs;
    } else {
      this.lastTsText = block.slice(sp2 + 1, to);
      ts = this.lastTs = Number(this.lastTsText);
      this.lastPeriod = this.periods.get(ts) ?? null;
    }
    if (this.opts.trackPeriods) {
      let p = this.lastPeriod;
      if (p) {
        p.last = now;
        p.lines++;
      } else {
        p = { first: now, last: now, lines: 1 };
        this.periods.set(ts, p);
        this.lastPeriod = p;
      }
    }
    const w = this.opts.watch;
    if (w && block.startsWith(w.prefix, from)) {
      const sp1 = block.indexOf(' ', from);
      if (sp1 > from && sp1 < sp2) w.fn(block.slice(from, sp1), Number(block.slice(sp1 + 1, sp2)), ts, now);
    }
  }

  private onLine(block: string, from: number, to: number): void {
    if (block.charCodeAt(from) !== 0x73 /* s */) return;
    for (const [prefix, suffix, type] of PATTERNS) {
      if (!block.startsWith(prefix, from)) continue;
      const sp1 = block.indexOf(' ', from);
      const sp2 = sp1 < 0 ? -1 : block.indexOf(' ', sp1 + 1);
      if (sp1 < 0 || sp2 < 0 || sp2 > to) {
        this.malformed++;
        return;
      }
      let id = block.slice(from + prefix.length, sp1);
      if (suffix) {
        if (!id.endsWith(suffix)) return; // another timer or set sub-metric
        id = id.slice(0, -suffix.length);
      }
      if (!/^\d+$/.test(id)) return;
      const i = Number(id);
      const value = Number(block.slice(sp1 + 1, sp2));
      const arr = this.received[type];
      if (i >= this.names || !Number.isFinite(value)) {
        this.malformed++;
        return;
      }
      arr[i] = type === 'g' ? value : (arr[i] ?? 0) + value;
      return;
    }
  }
}
