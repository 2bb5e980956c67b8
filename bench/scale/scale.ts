/**
 * Scale curves: one tallyd (debug log level) receives N distinct counter
 * names, every one of them at least once per flush, from bench/lib/loadgen.c,
 * for a few flushes; per period it notes how long the flush took (the
 * `period committed` log line minus the boundary: rotate, read, compute,
 * commit) and when the period's lines reached Carbon (the first one, and
 * the moment every name's counter line was in). Meanwhile it samples tallyd's RSS and the Redis memory
 * of tallyd's keys, and sends probe counters whose arrival in Carbon gives
 * the sample-to-Carbon latency. A run may have several load steps (the
 * RSS-flat check: the same names at doubling rates) and a concurrent load
 * of another counter set (bench.c.*, checked name by name like a trial).
 */
import dgram from 'node:dgram';
import { CarbonTally } from '../lib/carbon-tally.js';
import { runLoadgen, type LoadgenReport } from '../lib/loadgen.js';
import { dist, emptyResult, latency, mb, metricsOf, PER_DATAGRAM, round1, sleep, ScaleLines, type PeriodStat, type ScaleResult, type ScaleSpec } from './scale-stats.js';
import { median } from '../throughput/search.js';
import { cpuSeconds, info, peakRssBytes, redisClient, redisCpuSeconds, startServer, TALLYD_SETTLE_MS } from '../lib/servers.js';
import { compare, MAX_LOSS } from '../throughput/trial.js';

/** Load starts this long after a boundary, so each period holds whole loops over the names. */
const START_AFTER_BOUNDARY_MS = 50;
/** MEMORY USAGE samples this many fields of a hash (0 would walk all of them, blocking Redis). */
const MEMORY_SAMPLES = 1000;

export async function runScale(spec: ScaleSpec, corpusFile: string, datagramsPerLoop: number): Promise<ScaleResult> {
  const began = Date.now();
  const F = spec.flushInterval;
  const sentAt: number[] = [];
  const arrival = new Map<number, { now: number; ts: number }>();
  const scaleLines = new ScaleLines(spec.names);
  const carbon = new CarbonTally(spec.concurrent?.corpus.names ?? 1, {
    trackPeriods: true,
    watch: {
      prefix: 'stats_counts.scale',
      fn: (name, value, ts, now) => {
        if (name.startsWith('stats_counts.scale.')) scaleLines.add(Number(name.slice('stats_counts.scale.'.length)), value, ts, now);
        else if (name.startsWith('stats_counts.scale_probe.') && value > 0) {
          const k = Number(name.slice('stats_counts.scale_probe.'.length));
          if (!arrival.has(k)) arrival.set(k, { now, ts });
        }
      },
    },
  });
  await carbon.start();
  const usedBefore = Number((await info('memory')).get('used_memory') ?? 0);
  const server = await startServer('tallyd', carbon.port, { flushInterval: F, logLevel: 'debug' }).catch(async (err: unknown) => {
    await carbon.stop();
    throw err;
  });
  const result = emptyResult(spec);
  const probe = dgram.createSocket('udp4');
  let sampler: NodeJS.Timeout | null = null;
  let prober: NodeJS.Timeout | null = null;
  try {
    const prefix = server.keyPrefix ?? '';
    let peakKeys = 0;
    let late: { keys: Record<string, number>; used: number } | null = null;
    const sampleRedis = async (samples: number) => {
      const r = redisClient();
      const keys: Record<string, number> = {};
      let cursor = '0';
      do {
        const [next, found] = await r.scan(cursor, 'MATCH', `${prefix}*`, 'COUNT', 1000);
        cursor = next;
        for (const k of found) {
          const bytes = Number((await r.call('MEMORY', 'USAGE', k, 'SAMPLES', String(samples))) ?? 0);
          const kind = k.slice(k.indexOf('}:') + 2).replace(/:\d+:/, ':<ts>:');
          keys[kind] = (keys[kind] ?? 0) + bytes;
        }
      } while (cursor !== '0');
      const total = Object.values(keys).reduce((a, b) => a + b, 0);
      peakKeys = Math.max(peakKeys, total);
      return keys;
    };
    let sampling = false;
    sampler = setInterval(() => {
      if (sampling || !server.alive()) return;
      sampling = true;
      sampleRedis(5)
        .catch(() => undefined)
        .finally(() => (sampling = false));
    }, spec.sampleMs ?? 250);

    // The ramp: names 0..k*ramp-1 in flush k, until all are known to tallyd.
    let rampMetrics = 0;
    const ramp = spec.rampNewPerFlush ?? 0;
    for (let upto = ramp; ramp > 0; upto += ramp) {
      const n = Math.min(spec.names, upto);
      await sleep(Math.ceil(Date.now() / F) * F + START_AFTER_BOUNDARY_MS - Date.now());
      const r = await runLoadgen(corpusFile, server.udpPort, (spec.steps[0] ?? 0) / PER_DATAGRAM, Math.ceil(n / PER_DATAGRAM));
      rampMetrics += metricsOf(r.sent, datagramsPerLoop, spec.names);
      if (n >= spec.names) break;
    }

    // Start just after a boundary: period k of the load is then exactly one flush interval of it.
    let start = Math.ceil(Date.now() / F) * F + START_AFTER_BOUNDARY_MS;
    if (start - Date.now() < 300) start += F;
    await sleep(start - Date.now());
    const boundary0 = start - START_AFTER_BOUNDARY_MS;
    const stepMs = spec.flushes * F;
    const windowMs = stepMs * spec.steps.length;
    // The exact memory sample: late in the last loaded period, when the open period holds every name.
    const lateAt = boundary0 + windowMs - Math.max(300, F * 0.1);
    const lateTimer = setTimeout(() => {
      void Promise.all([sampleRedis(MEMORY_SAMPLES), info('memory')]).then(([keys, mem]) => {
        late = { keys, used: Number(mem.get('used_memory') ?? 0) };
      });
    }, lateAt - Date.now());
    let k = 0;
    prober = setInterval(() => {
      sentAt[k] = Date.now();
      probe.send(`scale_probe.${k++}:1|c`, server.udpPort, '127.0.0.1');
    }, Math.round(F * 0.23)); // not a divisor of F: the probes sample every phase of the period

    const cpu0 = cpuSeconds(server.pid);
    const redis0 = await redisCpuSeconds();
    const c = spec.concurrent;
    const concurrent = c ? runLoadgen(c.file, server.udpPort, c.rate / PER_DATAGRAM, Math.round((c.rate * windowMs) / 1000 / PER_DATAGRAM)) : null;
    const reports: LoadgenReport[] = [];
    const stepEnds: number[] = [];
    let sent = 0;
    let metrics = rampMetrics;
    for (const rate of spec.steps) {
      const report = await runLoadgen(corpusFile, server.udpPort, rate / PER_DATAGRAM, Math.round((rate * stepMs) / 1000 / PER_DATAGRAM));
      reports.push(report);
      stepEnds.push(Date.now());
      sent += report.sent;
      metrics += metricsOf(report.sent, datagramsPerLoop, spec.names); // each loadgen run starts the corpus over
      result.steps.push({
        rate,
        achievedRate: Math.round((report.sent * PER_DATAGRAM) / report.elapsed_s),
        datagramsSent: sent,
        metricsSent: metrics,
        rssEndMB: mb(peakRssBytes(server.pid, true)),
        rssPeakMB: mb(peakRssBytes(server.pid)),
        flushMs: null,
        processMs: null,
        carbonCompleteMs: null,
        periods: 0,
      });
    }
    const cReport = concurrent ? await concurrent : null;
    clearInterval(prober);
    prober = null;
    const sendEnd = Date.now();
    const window = (sendEnd - start) / 1000;
    result.cpuPct = round1(((cpuSeconds(server.pid) - cpu0) / window) * 100);
    result.redisCpuPct = round1((((await redisCpuSeconds()) - redis0) / window) * 100);
    const genCpu = reports.reduce((a, r) => a + r.cpu_user_s + r.cpu_sys_s, 0);
    result.loadgenCpuPct = round1((genCpu / window) * 100);

    // Wait until the period holding the last sample is committed and all its lines are in Carbon.
    const lastTs = Math.ceil((sendEnd + TALLYD_SETTLE_MS) / F) * (F / 1000);
    const deadline = Date.now() + 2 * F + 60_000;
    // In: every name's counter line, or (names lost on the way in never get one) as many lines as tallyd committed.
    const complete = (ts: number) => {
      const commit = server.commits.find((x) => x.ts === ts);
      return commit !== undefined && (scaleLines.completeAt(ts) !== null || (commit.lines !== null && (carbon.periods.get(ts)?.lines ?? 0) >= commit.lines));
    };
    // A flush that fails is retried every flush interval and fails the same way: two intervals of that is enough.
    const failing = () => server.warnings.some((w) => w.startsWith('processing a pending period failed')) && Date.now() > sendEnd + 2 * F;
    while (!complete(lastTs) && Date.now() < deadline && server.alive() && !failing()) await sleep(50);
    clearTimeout(lateTimer);
    for (const w of server.warnings) result.warnings[w] = (result.warnings[w] ?? 0) + 1;
    if (!server.alive()) throw new Error(`tallyd exited:\n${server.output().slice(-2000)}`);
    if (!complete(lastTs)) {
      const why = Object.keys(result.warnings)[0];
      result.error = `period ${lastTs} not complete in Carbon ${Math.round((Date.now() - sendEnd) / 1000)} s after the load${why ? `; tallyd: ${why}` : ''}`;
    }

    // Periods are processed one at a time, oldest first: the one before the first measured (the ramp's last) may hold it up.
    let prevCommit = server.commits.find((x) => x.ts === boundary0 / 1000)?.at ?? 0;
    for (let ts = boundary0 / 1000 + F / 1000; ts <= lastTs; ts += F / 1000) {
      const commit = server.commits.find((x) => x.ts === ts);
      const arr = carbon.periods.get(ts);
      const done = scaleLines.completeAt(ts) ?? (arr && commit?.lines != null && arr.lines >= commit.lines ? arr.last : null);
      const step = stepEnds.findIndex((end) => ts * 1000 <= end + START_AFTER_BOUNDARY_MS);
      result.periods.push({
        ts,
        step,
        flushMs: commit ? commit.at - ts * 1000 : null,
        processMs: commit ? commit.at - Math.max(ts * 1000, prevCommit) : null,
        carbonFirstMs: arr ? arr.first - ts * 1000 : null,
        carbonCompleteMs: done === null ? null : done - ts * 1000,
        // tallyd no longer logs a period's lines: those that reached Carbon (a re-sent line counts twice)
        lines: commit?.lines ?? (commit && arr ? arr.lines : null),
        carbonLines: arr?.lines ?? 0,
        stagesMs: commit?.stagesMs ?? {},
      });
      if (commit) prevCommit = commit.at;
    }
    for (const [i, st] of result.steps.entries()) {
      const ps = result.periods.filter((p) => p.step === i);
      const of = (f: (p: PeriodStat) => number | null) => dist(ps.flatMap((p) => [f(p)].filter((v): v is number => v !== null)));
      st.periods = ps.length;
      st.flushMs = of((p) => p.flushMs);
      st.processMs = of((p) => p.processMs);
      st.carbonCompleteMs = of((p) => p.carbonCompleteMs);
    }
    const lines = result.periods.flatMap((p) => (p.lines === null ? [] : [p.lines]));
    result.linesPerPeriod = lines.length ? median(lines) : null;
    result.loss = metrics > 0 ? Math.max(0, 1 - scaleLines.sum() / metrics) : 0;
    result.duplicateLines = scaleLines.duplicates;
    result.rssPeakMB = mb(peakRssBytes(server.pid));
    const lateSample = late as { keys: Record<string, number>; used: number } | null;
    const n = spec.names;
    result.redis = {
      bytesPerName: lateSample ? Math.round(Object.values(lateSample.keys).reduce((a, b) => a + b, 0) / n) : null,
      perKey: lateSample ? Object.fromEntries(Object.entries(lateSample.keys).map(([key, b]) => [key, round1(b / n)])) : {},
      peakBytesPerName: Math.round(peakKeys / n),
      usedMemoryDeltaPerName: lateSample ? Math.round((lateSample.used - usedBefore) / n) : null,
    };
    result.latency = latency(sentAt, arrival);
    if (c && cReport) {
      const check = compare(c.corpus.expected(cReport.sent), carbon.received, c.corpus.names);
      const achieved = Math.round((cReport.sent * PER_DATAGRAM) / cReport.elapsed_s);
      result.concurrent = {
        rate: c.rate,
        achievedRate: achieved,
        loss: check.loss,
        pass: check.loss < MAX_LOSS && check.overNames === 0,
        loadgenCpuPct: round1(((cReport.cpu_user_s + cReport.cpu_sys_s) / cReport.elapsed_s) * 100),
      };
    }
  } catch (err) {
    result.error = (err as Error).message;
  } finally {
    if (sampler) clearInterval(sampler);
    if (prober) clearInterval(prober);
    probe.close();
    await server.stop();
    await carbon.stop();
    result.wallMs = Date.now() - began;
  }
  return result;
}

