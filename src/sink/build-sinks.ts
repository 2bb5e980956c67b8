/**
 * The sinks of a flush thread, from the config's backends: graphite (when
 * graphiteHost is set; plaintext to graphitePort or pickle to
 * graphitePicklePort) and console.
 */
import type { Config } from '../config/types.js';
import type { PeriodSink } from '../flush/period-sink.js';
import type { Logger } from '../observability/logger.js';
import type { SelfStats } from '../observability/self-stats.js';
import type { Store } from '../store/store.js';
import { ConsoleSink } from './console/console-sink.js';
import { CarbonSink } from './graphite/carbon.js';
import { GraphiteSink } from './graphite/graphite-sink.js';

export function buildSinks(config: Config, store: Store, leaderToken: () => string | null, self: SelfStats, log: Logger): PeriodSink[] {
  const sinks: PeriodSink[] = [];
  if (config.backends.includes('graphite') && config.graphiteHost) {
    const pickle = config.graphiteProtocol === 'pickle';
    const target = { host: config.graphiteHost, port: pickle ? config.graphitePicklePort : config.graphitePort };
    const carbon = new CarbonSink(target, store, leaderToken, self, log.child({ component: 'carbon' }), {
      protocol: config.graphiteProtocol,
      writeTimeoutMs: config.carbonWriteTimeout,
    });
    sinks.push(new GraphiteSink(config, self, carbon));
  }
  if (config.backends.includes('console')) sinks.push(new ConsoleSink(config));
  return sinks;
}
