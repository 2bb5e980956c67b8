/**
 * Steady statsd traffic for fault tests, and the per-period check of what
 * Carbon got.
 *
 * SteadySender sends a counter over raw UDP (node:dgram) to 127.0.0.1 on a
 * fixed tick and records the wall-clock time of every datagram it sent and
 * how many increments it held. The period of a sample is the next wall-clock
 * multiple of flushInterval after its send time (a send at exactly k*I
 * belongs to (k+1)*I), and its Graphite timestamp is that boundary in s.
 *
 * checkPeriods() compares, per Graphite timestamp, the increments sent with
 * the value Carbon got: exact total; every period within what batching can
 * move (samples sent within slackMs of a boundary may land on either side);
 * the running total within the same slack at every boundary. It returns the
 * whole table; assertPeriods() fails with that table in the message.
 */
import dgram from 'node:dgram';
import type { CarbonLine } from './carbon.js';

export interface SentDatagram {
  /** Date.now() just before send(). */
  tMs: number;
  /** Increments of the counter in it. */
  n: number;
  /** Sequence number (0-based) of the datagram. */
  seq: number;
}

export interface SteadySenderOptions {
  port: number;
  /** Counter name (statsd), e.g. `faults.redis.hits`. */
  name: string;
  /** Tick period (ms). Default 10. */
  everyMs?: number;
  /** Datagrams per tick. Default 1. */
  datagramsPerTick?: number;
  /** Counter lines (`name:1|c`) per datagram. Default 3. */
  incrementsPerDatagram?: number;
  /** When set, each datagram also carries `<seqGauge>:<seq>|g` as its last line. */
  seqGauge?: string;
  /**
   * connect() the socket to the target: after the target's socket is closed,
   * the kernel's ICMP port-unreachable makes a later send fail with
   * ECONNREFUSED, and the sender stops there (see `refusedAtSeq`).
   */
  connect?: boolean;
}

export class SteadySender {
  readonly sent: SentDatagram[] = [];
  /** Seq of the first send that failed with ECONNREFUSED (connect mode), else null. */
  refusedAtSeq: number | null = null;
  /** Other send errors (messages), for assertion text. */
  readonly errors: string[] = [];
  private readonly sock = dgram.createSocket('udp4');
  private running = false;
  private loop: Promise<void> = Promise.resolve();
  private readonly o: Required<Omit<SteadySenderOptions, 'seqGauge'>> & { seqGauge: string | null };

  constructor(opts: SteadySenderOptions) {
    this.o = {
      everyMs: 10,
      datagramsPerTick: 1,
      incrementsPerDatagram: 3,
      connect: false,
      ...opts,
      seqGauge: opts.seqGauge ?? null,
    };
    this.sock.on('error', (err) => this.errors.push(err.message));
  }

  /** Starts the ticks; resolves once the socket is ready (and connected, in connect mode). */
  async start(): Promise<void> {
    if (this.o.connect) await new Promise<void>((r) => this.sock.connect(this.o.port, '127.0.0.1', () => r()));
    else await new Promise<void>((r) => this.sock.bind(0, '127.0.0.1', () => r()));
    this.running = true;
    this.loop = this.run();
  }

  /** Stops after the datagram in flight; the send log is final once this resolves. */
  async stop(): Promise<void> {
    this.running = false;
    await this.loop;
  }

  /** stop() and close the socket. Idempotent. */
  async close(): Promise<void> {
    await this.stop();
    await new Promise<void>((r) => {
      try {
        this.sock.close(() => r());
      } catch {
        r();
      }
    });
  }

  get total(): number {
    return this.sent.reduce((a, d) => a + d.n, 0);
  }

  /** Increments sent strictly before tMs. */
  sentBefore(tMs: number): number {
    let n = 0;
    for (const d of this.sent) if (d.tMs < tMs) n += d.n;
    return n;
  }

  private datagram(seq: number): Buffer {
    const lines: string[] = [];
    for (let i = 0; i < this.o.incrementsPerDatagram; i++) lines.push(`${this.o.name}:1|c`);
    if (this.o.seqGauge !== null) lines.push(`${this.o.seqGauge}:${seq}|g`);
    return Buffer.from(lines.join('\n'));
  }

  private send(buf: Buffer): Promise<Error | null> {
    return new Promise((resolve) => {
      const cb = (err: Error | null) => resolve(err);
      if (this.o.connect) this.sock.send(buf, cb);
      else this.sock.send(buf, this.o.port, '127.0.0.1', cb);
    });
  }

  private async run(): Promise<void> {
    let next = Date.now();
    let seq = 0;
    while (this.running) {
      for (let i = 0; i < this.o.datagramsPerTick && this.running; i++) {
        const tMs = Date.now();
        const err = await this.send(this.datagram(seq));
        if (err) {
          if ((err as NodeJS.ErrnoException).code === 'ECONNREFUSED' && this.o.connect) {
            this.refusedAtSeq = seq;
            this.running = false;
            return;
          }
          this.errors.push(err.message);
          continue;
        }
        this.sent.push({ tMs, n: this.o.incrementsPerDatagram, seq });
        seq++;
      }
      next += this.o.everyMs;
      const wait = next - Date.now();
      if (wait > 0) await new Promise((r) => setTimeout(r, wait));
      else if (wait < -10 * this.o.everyMs) next = Date.now(); // fell far behind (a paused test process): do not burst
    }
  }
}

/** The boundary (ms) of the period a sample sent at tMs belongs to. */
export function periodOf(tMs: number, intervalMs: number): number {
  return (Math.floor(tMs / intervalMs) + 1) * intervalMs;
}

export interface PeriodRow {
  /** Graphite timestamp (s) = the period's boundary. */
  ts: number;
  sent: number;
  /** Value Carbon got for ts (identical re-sends counted once); null when none. */
  received: number | null;
  /** Distinct values received for ts, when more than one (a conflict). */
  conflicting: number[] | null;
  lo: number;
  hi: number;
  /** Running totals at the end of this period: received minus sent. */
  cumDiff: number;
  /** How far the running totals may differ here. */
  cumSlack: number;
  /** Checked (inside [fromMs, untilMs]). */
  checked: boolean;
  ok: boolean;
}

export interface PeriodCheckOptions {
  intervalMs: number;
  /** Samples sent within this of a boundary may land on either side. Default 60. */
  slackMs?: number;
  /** Check only periods that start at or after this (ms). */
  fromMs?: number;
  /** Check only periods that end at or before this (ms). */
  untilMs?: number;
  /** Require the received total to equal the sent total. Default true. */
  exactTotal?: boolean;
}

export interface PeriodReport {
  rows: PeriodRow[];
  sentTotal: number;
  receivedTotal: number;
  ok: boolean;
  /** The table and the verdict, for an assertion message. */
  text: string;
}

/** Per-period comparison of the increments sent with the Carbon series of their counter (`stats_counts.<name>`). */
export function checkPeriods(sent: readonly SentDatagram[], series: readonly CarbonLine[], opts: PeriodCheckOptions): PeriodReport {
  const I = opts.intervalMs;
  const slack = opts.slackMs ?? 60;
  const exactTotal = opts.exactTotal ?? true;
  const inRange = (a: number, b: number): number => {
    let n = 0;
    for (const d of sent) if (d.tMs >= a && d.tMs < b) n += d.n;
    return n;
  };

  const byTs = new Map<number, Set<number>>();
  for (const l of series) {
    const set = byTs.get(l.ts) ?? new Set<number>();
    set.add(Number(l.value));
    byTs.set(l.ts, set);
  }
  const boundaries = new Set<number>();
  for (const d of sent) boundaries.add(periodOf(d.tMs, I));
  for (const ts of byTs.keys()) boundaries.add(ts * 1000);
  const sorted = [...boundaries].sort((a, b) => a - b);
  // Fill gaps so a period with nothing received and nothing sent still shows.
  const all: number[] = [];
  const first = sorted[0];
  const last = sorted[sorted.length - 1];
  if (first !== undefined && last !== undefined) for (let b = first; b <= last; b += I) all.push(b);

  const rows: PeriodRow[] = [];
  let cumSent = 0;
  let cumRecv = 0;
  let receivedTotal = 0;
  for (const B of all) {
    const s = inRange(B - I, B);
    const vals = byTs.get(B / 1000);
    const distinct = vals ? [...vals] : [];
    const received = distinct.length === 0 ? null : Math.max(...distinct);
    const r = received ?? 0;
    cumSent += s;
    cumRecv += r;
    receivedTotal += r;
    const lo = s - inRange(B - I, B - I + slack) - inRange(B - slack, B);
    const hi = s + inRange(B - I - slack, B - I) + inRange(B, B + slack);
    const cumSlack = inRange(B - slack, B + slack);
    const checked = (opts.fromMs === undefined || B - I >= opts.fromMs) && (opts.untilMs === undefined || B <= opts.untilMs);
    const ok = !checked || (distinct.length <= 1 && r >= Math.max(lo, 0) && r <= hi && Math.abs(cumRecv - cumSent) <= cumSlack);
    rows.push({ ts: B / 1000, sent: s, received, conflicting: distinct.length > 1 ? distinct : null, lo, hi, cumDiff: cumRecv - cumSent, cumSlack, checked, ok });
  }
  const sentTotal = cumSent;
  const totalOk = !exactTotal || receivedTotal === sentTotal;
  const ok = totalOk && rows.every((r) => r.ok);
  return { rows, sentTotal, receivedTotal, ok, text: formatReport(rows, sentTotal, receivedTotal, exactTotal, slack) };
}

function formatReport(rows: readonly PeriodRow[], sentTotal: number, receivedTotal: number, exactTotal: boolean, slackMs: number): string {
  const head = ['ts', 'sent', 'received', 'allowed', 'cum(recv-sent)', ''];
  const body = rows.map((r) => [
    String(r.ts),
    String(r.sent),
    r.received === null ? '-' : r.conflicting ? `${r.received} (values ${r.conflicting.join('/')})` : String(r.received),
    `${Math.max(r.lo, 0)}..${r.hi}`,
    `${r.cumDiff} (±${r.cumSlack})`,
    !r.checked ? 'not checked' : r.ok ? 'ok' : 'BAD',
  ]);
  const widths = head.map((h, i) => Math.max(h.length, ...body.map((b) => (b[i] ?? '').length)));
  const fmt = (cells: string[]) => cells.map((c, i) => c.padStart(widths[i] ?? 0)).join('  ');
  const total = `total sent ${sentTotal}, received ${receivedTotal}${exactTotal ? (sentTotal === receivedTotal ? ' (exact)' : ' (MISMATCH)') : ''}; slack ${slackMs} ms`;
  return [fmt(head), ...body.map(fmt), total].join('\n');
}

/** Throws an AssertionError-like Error with the full table unless checkPeriods() is ok. */
export function assertPeriods(what: string, sent: readonly SentDatagram[], series: readonly CarbonLine[], opts: PeriodCheckOptions): PeriodReport {
  const report = checkPeriods(sent, series, opts);
  if (!report.ok) throw new Error(`${what}: per-period counts wrong\n${report.text}`);
  return report;
}

/** Polls pred every 25 ms until it holds (true) or timeoutMs passes (false). Never throws on timeout. */
export async function waitUntil(pred: () => boolean | Promise<boolean>, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await pred()) return true;
    if (Date.now() > deadline) return false;
    await new Promise((r) => setTimeout(r, 25));
  }
}

/**
 * Waits (bounded) until Carbon holds at least `total` for the series and a
 * line of it timestamped `afterTs` or later (the flushes after traffic ended
 * went out), so nothing more is due. False on timeout: the assertion that
 * follows prints the table.
 */
export function waitSettled(series: () => readonly CarbonLine[], total: number, afterTs: number, timeoutMs: number): Promise<boolean> {
  return waitUntil(() => {
    const s = series();
    const byTs = new Map<number, number>();
    for (const l of s) byTs.set(l.ts, Math.max(byTs.get(l.ts) ?? 0, Number(l.value)));
    let sum = 0;
    let maxTs = 0;
    for (const [ts, v] of byTs) {
      sum += v;
      maxTs = Math.max(maxTs, ts);
    }
    return sum >= total && maxTs >= afterTs;
  }, timeoutMs);
}

/** Emits text as TAP diagnostics, one line each (the runner escapes newlines inside one). */
export function diagnoseLines(t: { diagnostic(message: string): void }, text: string): void {
  for (const line of text.split('\n')) t.diagnostic(line);
}
