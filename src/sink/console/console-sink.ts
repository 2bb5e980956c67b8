/**
 * statsd's console backend (backends/console.js of Etsy statsd 0.9): prints
 * every flush as "Flushing stats at  <date>" and the metrics object
 * (counters, timers, gauges, timer_data, counter_rates, sets, pctThreshold),
 * with console.log's formatting, or util.inspect(depth 5, colors) when
 * `console.prettyprint` is set. Only the leader flushes, so one tallyd of a
 * group prints each period. Nothing goes to the outbox. The values are the
 * computed period's (flush/ did the maths); this only reshapes and prints.
 */
import { format, inspect } from 'node:util';
import type { Config } from '../../config/types.js';
import type { ComputedPeriod } from '../../flush/computed-period.js';
import type { PeriodSink } from '../../flush/period-sink.js';
import { statsdMetrics, type StatsdMetricsConfig } from './statsd-metrics.js';

export type ConsoleSinkConfig = StatsdMetricsConfig & Pick<Config, 'console'>;

export class ConsoleSink implements PeriodSink {
  readonly name = 'console';

  constructor(
    private readonly cfg: ConsoleSinkConfig,
    private readonly write: (text: string) => void = (text) => void process.stdout.write(text),
  ) {}

  start(): void {}

  encode(): Promise<string[]> {
    return Promise.resolve([]);
  }

  committed(period: ComputedPeriod): void {
    this.write(format('Flushing stats at ', new Date(period.timestampS * 1000).toString()) + '\n');
    const out = statsdMetrics(period, this.cfg);
    this.write((this.cfg.console.prettyprint ? inspect(out, { depth: 5, colors: true }) : format(out)) + '\n');
  }

  stop(): Promise<void> {
    return Promise.resolve();
  }
}
