/**
 * Where in time a server's UDP loss happens: one server, one mode, one rate
 * (like one trial, starting 1 s before a flush), while the socket's kernel
 * drop counter and receive queue (/proc/net/udp) are sampled every 5 ms and
 * each process's CPU, main thread apart, every 100 ms. Prints a line per
 * 100 ms with drops, the fullest the queue got and CPU per process, then
 * how the drops fall relative to flush boundaries (CPU is in 10 ms ticks,
 * and main thread and process are read apart: the "other threads" share is
 * +-10). A diagnostic, not part
 * of `npm run bench`:
 *
 *   node --import tsx bench/profile/drop-timeline.ts tallyd-w2 counters-32 1900000 [seconds] [--with-names 100000]
 *
 * --with-names N adds the scale curves' load (N distinct counter names, each
 * twice per flush, from a second loadgen), so the timeline shows what a big
 * flush does to ingest (the "ingest during 100k-name flushes" check).
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import path from 'node:path';
import { ensureBuilt } from '../lib/build.js';
import { CarbonTally } from '../lib/carbon-tally.js';
import { Corpus, parseMode } from '../lib/load.js';
import { buildLoadgen, BUILD_DIR, runLoadgen } from '../lib/loadgen.js';
import { flushIntervalFor, scaleRate } from '../scale/scale-suite.js';
import { PER_DATAGRAM, writeScaleCorpus } from '../scale/scale-stats.js';
import { closeRedis, FLUSH_INTERVAL, parseServer, startServer } from '../lib/servers.js';

const SAMPLE_MS = 5;
const BUCKET_MS = 100;

interface Sample {
  at: number;
  drops: number;
  rxQueue: number;
}

/** [drops, fullest rx_queue bytes] over the sockets bound to the port (a cluster's workers may each have one). */
function socketState(port: number): [number, number] | null {
  const hex = `:${port.toString(16).toUpperCase().padStart(4, '0')}`;
  let found = false;
  let drops = 0;
  let queue = 0;
  for (const line of readFileSync('/proc/net/udp', 'utf8').split('\n')) {
    const f = line.trim().split(/\s+/);
    if (!f[1]?.endsWith(hex)) continue;
    found = true;
    drops += Number(f[f.length - 1]);
    queue = Math.max(queue, parseInt(f[4]?.split(':')[1] ?? '0', 16));
  }
  return found ? [drops, queue] : null;
}

/** CPU ticks of a process: [main thread, every other thread]. */
function ticks(pid: number): [number, number] {
  const read = (file: string) => {
    const s = readFileSync(file, 'utf8');
    const f = s.slice(s.lastIndexOf(')') + 2).split(' ');
    return Number(f[11]) + Number(f[12]);
  };
  const all = read(`/proc/${pid}/stat`);
  const main = read(`/proc/${pid}/task/${pid}/stat`);
  return [main, all - main];
}

async function main(): Promise<void> {
  const argv = process.argv.slice(2);
  const withAt = argv.indexOf('--with-names');
  const withNames = withAt >= 0 ? Number(argv.splice(withAt, 2)[1]) : 0;
  if (withNames && flushIntervalFor(withNames) !== FLUSH_INTERVAL) throw new Error(`--with-names: at most ${FLUSH_INTERVAL} ms flushes, so fewer than 1M names`);
  const [serverArg = 'tallyd', modeArg = 'counters-32', rateArg = '1000000', secondsArg = '4'] = argv;
  const name = parseServer(serverArg);
  if (!name) throw new Error(`unknown server ${serverArg}`);
  const mode = parseMode(modeArg);
  if (mode.transport !== 'udp') throw new Error('udp modes only');
  const rate = Number(rateArg);
  const seconds = Number(secondsArg);
  ensureBuilt(true);
  buildLoadgen();
  const work = mkdtempSync(path.join(BUILD_DIR, 'timeline-'));
  const file = path.join(work, `${mode.name}.bin`);
  const corpus = new Corpus(mode, 1000, file);
  const scaleFile = path.join(work, 'scale.bin');
  if (withNames) writeScaleCorpus(withNames, scaleFile);
  const carbon = new CarbonTally(corpus.names);
  await carbon.start();
  const server = await startServer(name, carbon.port);
  try {
    if (server.flushPhaseMs === null) throw new Error('flush phase unknown (statsd started late in a second): run again');
    const phase = server.flushPhaseMs;
    const wait = (((phase - 1000 - Date.now() - 150) % FLUSH_INTERVAL) + FLUSH_INTERVAL) % FLUSH_INTERVAL;
    await sleep(wait + 150);
    const t0 = Date.now();
    const samples: Sample[] = [];
    const cpu: { at: number; t: [number, number][] }[] = [];
    const timer = setInterval(() => {
      const s = socketState(server.udpPort);
      if (s) samples.push({ at: Date.now() - t0, drops: s[0], rxQueue: s[1] });
      const at = Date.now() - t0;
      if (cpu.length === 0 || at - (cpu[cpu.length - 1]?.at ?? 0) >= BUCKET_MS) cpu.push({ at, t: server.processes.map((p) => ticks(p.pid)) });
    }, SAMPLE_MS);
    const per = mode.perDatagram;
    // The distinct-name load starts a flush earlier, so every measured period holds all its names.
    const scaleRateNow = withNames ? scaleRate(withNames) : 0;
    const scaleLoad = withNames
      ? runLoadgen(scaleFile, server.udpPort, scaleRateNow / PER_DATAGRAM, Math.round((scaleRateNow * (seconds + 3)) / PER_DATAGRAM))
      : null;
    if (scaleLoad) await sleep(FLUSH_INTERVAL);
    const report = await runLoadgen(file, server.udpPort, rate / per, Math.round((rate * seconds) / per));
    await scaleLoad;
    await sleep(1500);
    clearInterval(timer);
    console.log(`${name} ${mode.name} at ${rate} metrics/s (reached ${Math.round((report.sent * per) / report.elapsed_s)}), ${seconds} s; t = ms since the load began; flushes at t = 1000 + k x ${FLUSH_INTERVAL}`);
    if (withNames) console.log(`plus ${withNames} distinct names at ${scaleRateNow} metrics/s from t = 0; the ${mode.name} load from t = ${FLUSH_INTERVAL}`);
    console.log(`processes: ${server.processes.map((p) => `${p.role} ${p.pid}`).join(', ')}; CPU % per process as main thread + other threads`);
    let prevDrops = samples[0]?.drops ?? 0;
    let bucket = 0;
    const nearFlush = { drops: 0, other: 0 };
    for (let b = 0; b * BUCKET_MS < seconds * 1000 + 1500 + (withNames ? FLUSH_INTERVAL : 0); b++) {
      const inB = samples.filter((s) => s.at >= b * BUCKET_MS && s.at < (b + 1) * BUCKET_MS);
      const last = inB[inB.length - 1];
      if (!last) continue;
      const drops = last.drops - prevDrops;
      prevDrops = last.drops;
      const c0 = cpu.find((c) => c.at >= b * BUCKET_MS);
      const c1 = cpu.find((c) => c.at >= (b + 1) * BUCKET_MS);
      const use = c0 && c1 ? c0.t.map((t, i) => `${pct(t[0], c1.t[i]?.[0], c1.at - c0.at)}+${pct(t[1], c1.t[i]?.[1], c1.at - c0.at)}`).join('  ') : '';
      // Within 200 ms after a flush boundary (t = 1000 + k x 2000).
      const sinceFlush = (((b * BUCKET_MS - 1000) % FLUSH_INTERVAL) + FLUSH_INTERVAL) % FLUSH_INTERVAL;
      if (sinceFlush < 200) nearFlush.drops += drops;
      else nearFlush.other += drops;
      console.log(`t ${String(b * BUCKET_MS).padStart(5)}  drops ${String(drops).padStart(6)}  max rx_queue ${String(Math.max(...inB.map((s) => s.rxQueue))).padStart(8)} B  cpu ${use}`);
      bucket++;
    }
    const total = nearFlush.drops + nearFlush.other;
    console.log(`drops ${total} datagrams (${((total * per * 100) / Math.max(1, report.sent * per)).toFixed(3)} % of metrics); in the 200 ms after a flush boundary ${nearFlush.drops}, elsewhere ${nearFlush.other}; ${bucket} buckets`);
  } finally {
    await server.stop();
    await carbon.stop();
    await closeRedis();
    rmSync(work, { recursive: true, force: true });
  }
}

function pct(a: number, b: number | undefined, ms: number): string {
  return b === undefined || ms <= 0 ? '?' : String(Math.round(((b - a) * 10 * 100) / ms)).padStart(3);
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

main().then(
  () => process.exit(0),
  (err: unknown) => {
    console.error(err);
    process.exit(1);
  },
);
