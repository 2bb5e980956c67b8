/**
 * statsd's graphite backend as a PeriodSink: encode() turns a computed period
 * into Graphite plaintext chunks (encode.ts, named exactly like statsd; the
 * values come computed), which
 * the flusher commits to the outbox with the period; CarbonSink delivers the
 * outbox, as plaintext or pickle.
 */
import type { ComputedPeriod } from '../../flush/computed-period.js';
import type { PeriodSink } from '../../flush/period-sink.js';
import { runSliced } from '../../flush/slices.js';
import type { SelfStats } from '../../observability/self-stats.js';
import type { CarbonSink } from './carbon.js';
import { LineChunker } from './chunk.js';
import { encodePeriodSliced, type EncodeConfig } from './encode.js';

export class GraphiteSink implements PeriodSink {
  readonly name = 'graphite';

  constructor(
    private readonly cfg: EncodeConfig,
    private readonly self: SelfStats,
    private readonly carbon: Pick<CarbonSink, 'start' | 'kick' | 'stop'> & Partial<Pick<CarbonSink, 'busy'>>,
  ) {}

  start(): void {
    this.carbon.start();
  }

  async encode(period: ComputedPeriod): Promise<string[]> {
    const chunker = new LineChunker();
    const graphite = { ...this.self.graphite };
    await runSliced(encodePeriodSliced(period, graphite, this.cfg, (line) => chunker.add(line)));
    return chunker.finish();
  }

  busy(): boolean {
    return this.carbon.busy ?? false;
  }

  committed(): void {
    this.carbon.kick();
  }

  stop(timeoutMs: number): Promise<void> {
    return this.carbon.stop(timeoutMs);
  }
}
