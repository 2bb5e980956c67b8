/**
 * Keeps each committed period's Graphite names and values in Redis for the
 * HTTP API (store/recent.ts), whether or not a Graphite backend is
 * configured ("without Carbon the status page still shows every metric
 * arriving"). A PeriodSink that puts nothing in the outbox: encode() answers
 * [] and the work happens in committed(), after the commit went through, on
 * a queue of its own; so it can neither delay nor fail a commit, and a
 * failure is counted (historyErrors) and logged, rate-limited, and the next
 * period is kept as usual. Only the leader commits, so one process writes.
 */
import type { ComputedPeriod } from '../../flush/computed-period.js';
import type { PeriodSink } from '../../flush/period-sink.js';
import { runSliced } from '../../flush/slices.js';
import type { Logger } from '../../observability/logger.js';
import { RateLimitedLog } from '../../observability/rate-limited-log.js';
import type { SelfStats } from '../../observability/self-stats.js';
import type { RecentBounds, RecentPeriods } from '../../store/recent.js';
import { encodePeriodSliced, type EncodeConfig } from '../graphite/encode.js';

/** Periods waiting to be written (a catch-up after a failover commits several at once); more are skipped and counted. */
const MAX_QUEUED = 4;

export class HistorySink implements PeriodSink {
  readonly name = 'history';
  private queue: Promise<void> = Promise.resolve();
  private queued = 0;
  private readonly errLog: RateLimitedLog;

  constructor(
    private readonly cfg: EncodeConfig,
    private readonly recent: Pick<RecentPeriods, 'append'>,
    private readonly bounds: RecentBounds,
    private readonly self: Pick<SelfStats, 'graphite' | 'historyErrors' | 'historySkipped'>,
    private readonly log: Logger,
  ) {
    this.errLog = new RateLimitedLog(log);
  }

  start(): void {}

  encode(): Promise<string[]> {
    return Promise.resolve([]);
  }

  committed(period: ComputedPeriod): void {
    if (this.queued >= MAX_QUEUED) {
      this.skip(period, `${MAX_QUEUED} periods already waiting to be kept`);
      return;
    }
    this.queued++;
    this.queue = this.queue.then(() => this.keep(period)).finally(() => this.queued--);
  }

  /** Waits for the queued writes, at most timeoutMs. */
  async stop(timeoutMs: number): Promise<void> {
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([this.queue, new Promise<void>((r) => (timer = setTimeout(r, timeoutMs)))]);
    clearTimeout(timer);
  }

  private async keep(period: ComputedPeriod): Promise<void> {
    try {
      const names: string[] = [];
      const values: string[] = [];
      let bytes = 0;
      await runSliced(
        encodePeriodSliced(period, { ...this.self.graphite }, this.cfg, (line) => {
          const end = line.lastIndexOf(' ');
          const mid = line.lastIndexOf(' ', end - 1);
          names.push(line.slice(0, mid));
          values.push(line.slice(mid + 1, end));
          bytes += Buffer.byteLength(line) + 1;
        }),
      );
      if (bytes > this.bounds.maxBytes) {
        this.skip(period, `its ${bytes} bytes of lines exceed http.historyMaxBytes (${this.bounds.maxBytes})`);
        return;
      }
      await this.recent.append(period.timestampS * 1000, names, values, bytes, this.bounds);
    } catch (err) {
      this.self.historyErrors++;
      this.errLog.warn(() => ({
        msg: 'could not keep a committed period for the HTTP API (the commit and delivery are not affected)',
        fields: { ts: period.timestampS, err: (err as Error).message, historyErrors: this.self.historyErrors },
      }));
    }
  }

  private skip(period: ComputedPeriod, why: string): void {
    this.self.historySkipped++;
    this.errLog.warn(() => ({
      msg: `a committed period was not kept for the HTTP API: ${why}`,
      fields: { ts: period.timestampS, historySkipped: this.self.historySkipped },
    }));
  }
}
