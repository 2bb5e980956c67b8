/**
 * Finds the highest loss-free rate of one server in one mode. The first run
 * probes far above any server's capacity and starts from what got through;
 * later runs walk from the earlier runs' median in steps of 1.2. Then it
 * steps (x factor) until a trial passes and one fails, and bisects (in log
 * space) until fail/pass <= precision or the trial budget is spent.
 */
import type { Corpus } from '../lib/load.js';
import type { ServerName, ServerOptions } from '../lib/servers.js';
import { runTrial, type TrialResult } from './trial.js';

export type Bound =
  /** a passing and a failing rate within precision (or the trial budget ran out) */
  | 'found'
  /** loadgen could not send faster: the server's limit is higher */
  | 'generator'
  /** passed at --max-rate */
  | 'max-rate'
  /** failed even at the lowest rate tried */
  | 'below-min'
  /** the trial budget ran out before anything passed */
  | 'no-pass'
  /** a trial crashed */
  | 'error';

export interface SearchResult {
  server: ServerName;
  mode: string;
  run: number;
  /**
   * Highest rate that passed, metrics/s (0 if none). With bound 'generator',
   * the rate loadgen really reached in that trial, not its target: the
   * server is known to keep up with that much, and the table prints it as a
   * lower bound.
   */
  lossFreeRate: number;
  /** Lowest rate that failed, if any. */
  failedRate: number | null;
  bound: Bound;
  best: TrialResult | null;
  trials: TrialResult[];
}

export interface SearchOptions {
  durationS: number;
  maxRate: number;
  minRate: number;
  precision: number;
  maxTrials: number;
  /** No new trial once this many ms have gone by since the search began (the quick profile's clock). */
  budgetMs?: number;
  /** Step down by this while nothing has passed (first run). */
  downFactor: number;
  /** The median of earlier runs; absent: probe first. */
  start?: number;
  /** Datagrams/s of the first run's probe (times metrics per datagram, capped by maxRate). */
  probeDatagramRate: number;
  serverOptions?: ServerOptions;
  onTrial?: (t: TrialResult) => void;
}

const LATER_RUN_STEP = 1.2;

export async function search(server: ServerName, corpus: Corpus, corpusFile: string, run: number, o: SearchOptions): Promise<SearchResult> {
  const trials: TrialResult[] = [];
  const began = Date.now();
  // Written by trial(); an object so control-flow narrowing doesn't freeze them.
  const st: { best: TrialResult | null; failed: number | null } = { best: null, failed: null };
  const trial = async (rate: number): Promise<TrialResult> => {
    const t = await runTrial({ server, corpus, corpusFile, rate, durationS: o.durationS, serverOptions: o.serverOptions });
    trials.push(t);
    o.onTrial?.(t);
    if (t.pass && (!st.best || t.rate > st.best.rate)) st.best = t;
    if (!t.pass && !t.error) st.failed = st.failed === null ? rate : Math.min(st.failed, rate);
    return t;
  };

  let rate: number;
  let factor: number;
  let down: number;
  if (o.start !== undefined && o.start > 0) {
    // Walk from the earlier runs' median in steps of 1.2 (an outlier in run 1
    // can be far off), then bisect: usually three or four trials.
    rate = nice(Math.min(o.start, o.maxRate));
    factor = Math.max(o.precision, LATER_RUN_STEP);
    down = factor;
  } else {
    const probeRate = nice(Math.min(o.maxRate, o.probeDatagramRate * corpus.mode.perDatagram));
    const probe = await trial(probeRate);
    factor = 2;
    down = o.downFactor;
    if (probe.error) return done('error');
    if (probe.pass) {
      if (probe.generatorLimited) return done('generator');
      if (probeRate >= o.maxRate) return done('max-rate');
      rate = nice(Math.min(o.maxRate, probeRate * factor));
    } else {
      // What got through under overload, a bit lower: overload throughput overstates the loss-free rate.
      // Over the time it really took: a PUSH generator held back by backpressure sends for longer than durationS.
      const through = (probe.metricsSent * (1 - probe.loss)) / Math.max(o.durationS, probe.loadgen?.elapsed_s ?? 0);
      rate = nice(Math.max(o.minRate, Math.min(probeRate / down, through * 0.7)));
    }
  }

  while (trials.length < o.maxTrials) {
    const spent = Date.now() - began;
    const perTrial = trials.length ? spent / trials.length : 0;
    if (o.budgetMs !== undefined && spent + perTrial > o.budgetMs) break;
    const t = await trial(rate);
    if (t.error) return done('error');
    const lo = st.best;
    const failed = st.failed;
    if (t.pass && t.generatorLimited) return done('generator');
    if (lo && failed !== null) {
      if (failed / lo.rate <= o.precision) break;
      rate = nice(Math.sqrt(lo.rate * failed));
      if (rate <= lo.rate || rate >= failed) break;
    } else if (lo) {
      if (lo.rate >= o.maxRate) return done('max-rate');
      rate = nice(Math.min(o.maxRate, lo.rate * factor));
    } else {
      if (rate <= o.minRate) return done('below-min');
      rate = nice(Math.max(o.minRate, rate / down));
    }
  }
  return done(st.best ? 'found' : 'no-pass');

  function done(bound: Bound): SearchResult {
    const top = st.best;
    const rate = top ? (bound === 'generator' ? Math.min(top.rate, top.achievedRate) : top.rate) : 0;
    return { server, mode: corpus.mode.name, run, lossFreeRate: rate, failedRate: st.failed, bound, best: top, trials };
  }
}

/** Rounds a rate to 3 significant digits. */
export function nice(rate: number): number {
  if (rate <= 0) return 0;
  const step = 10 ** Math.max(0, Math.floor(Math.log10(rate)) - 2);
  return Math.max(1, Math.round(rate / step) * step);
}

export function median(xs: readonly number[]): number {
  if (xs.length === 0) return 0;
  const s = [...xs].sort((a, b) => a - b);
  const mid = s.length >> 1;
  return s.length % 2 ? (s[mid] ?? 0) : ((s[mid - 1] ?? 0) + (s[mid] ?? 0)) / 2;
}
