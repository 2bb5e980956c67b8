/**
 * `npm run bench`: tallyd against Etsy statsd 0.9 on this machine, in the
 * same run. For each mode and server, the highest rate (metrics/s) at which
 * less than 0.1 % of what bench/loadgen.c sent went missing from Carbon;
 * with the servers' CPU, Redis's CPU (tallyd's work is split with it) and
 * peak RSS at that rate. See bench/README.md.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, rmSync, statSync } from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { Corpus, DEFAULT_MODES, parseMode, PLANNED_MODES, type Mode } from './load.js';
import { buildLoadgen, BUILD_DIR } from './loadgen.js';
import { machine, machineText, modeTitle, ratio, saveJson, summarize, table, type Summary } from './report.js';
import { median, search, type SearchOptions, type SearchResult } from './search.js';
import { closeRedis, FLUSH_INTERVAL, ROOT, SERVERS, type ServerName } from './servers.js';
import { MAX_LOSS, runTrial, type TrialResult } from './trial.js';

class UsageError extends Error {}

/** Each search of --quick stops starting trials after this long: 4 searches fit in 2 minutes. */
const QUICK_SEARCH_BUDGET_MS = 25_000;

const USAGE = `npm run bench -- [options]
  --quick            under 2 minutes: modes counters-1,mixed-32, 1 run, 2 s trials, coarse search
  --ci               plumbing check: one trial per server and mode at a low fixed rate; exit 0 unless something crashed
  --modes a,b        ${DEFAULT_MODES.join(',')} (default all); any <counters|timers|gauges|sets|mixed>-<per datagram>
  --servers a,b      tallyd,statsd (default both)
  --runs N           searches per server and mode; medians are reported (default 3, quick 1)
  --duration S       seconds of load per trial (default 4, quick 2, ci 2)
  --names N          distinct names per metric type (default 1000)
  --max-rate R       highest metrics/s tried (default 10000000)
  --rate R           no search: one trial per server and mode at R metrics/s
  --mix c=70,ms=20,g=5,s=5   type weights of the mixed modes
  --tallyd-rcvbuf B  tallyd's udp recvBufferSize (default its own, 8 MiB); 106496 gives statsd's 212992 (Linux doubles it)
  --no-build         run dist/ as it is, even if src/ is newer
`;

const OPTIONS = {
  options: {
    quick: { type: 'boolean', default: false },
    ci: { type: 'boolean', default: false },
    modes: { type: 'string' },
    servers: { type: 'string' },
    runs: { type: 'string' },
    duration: { type: 'string' },
    names: { type: 'string' },
    'max-rate': { type: 'string' },
    rate: { type: 'string' },
    mix: { type: 'string' },
    'tallyd-rcvbuf': { type: 'string' },
    'no-build': { type: 'boolean', default: false },
    help: { type: 'boolean', short: 'h', default: false },
  },
} as const;

function options() {
  try {
    return parseArgs(OPTIONS).values;
  } catch (err) {
    throw new UsageError(`${(err as Error).message}\n\n${USAGE}`);
  }
}

function num(text: string | undefined, fallback: number, what: string): number {
  if (text === undefined) return fallback;
  const n = Number(text);
  if (!(n > 0)) throw new UsageError(`--${what} wants a positive number, got ${text}`);
  return n;
}

async function main(): Promise<number> {
  const opt = options();
  if (opt.help) {
    process.stdout.write(USAGE);
    return 0;
  }
  const profile = opt.ci ? 'ci' : opt.quick ? 'quick' : 'full';
  const modeNames = (opt.modes ?? (profile === 'full' ? DEFAULT_MODES.join(',') : 'counters-1,mixed-32')).split(',');
  const planned = modeNames.filter((m) => m in PLANNED_MODES);
  let modes: Mode[];
  try {
    modes = modeNames.filter((m) => !(m in PLANNED_MODES)).map((m) => parseMode(m, opt.mix));
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
  const servers = (opt.servers ?? SERVERS.join(',')).split(',').map((s) => {
    if (!(SERVERS as readonly string[]).includes(s)) throw new UsageError(`unknown server ${s}: want ${SERVERS.join(',')}`);
    return s as ServerName;
  });
  const runs = Math.round(num(opt.runs, profile === 'full' ? 3 : 1, 'runs'));
  const durationS = num(opt.duration, profile === 'full' ? 4 : 2, 'duration');
  const names = Math.round(num(opt.names, 1000, 'names'));
  const fixedRate = opt.rate !== undefined ? num(opt.rate, 0, 'rate') : profile === 'ci' ? 5000 : null;
  const searchOpts: Omit<SearchOptions, 'start'> = {
    durationS,
    maxRate: num(opt['max-rate'], 10_000_000, 'max-rate'),
    minRate: 500,
    precision: profile === 'full' ? 1.1 : 1.3,
    maxTrials: profile === 'full' ? 7 : 5,
    downFactor: profile === 'full' ? 2 : 3,
    ...(profile === 'quick' ? { budgetMs: QUICK_SEARCH_BUDGET_MS } : {}),
    probeDatagramRate: 300_000,
    serverOptions: opt['tallyd-rcvbuf'] ? { tallydRecvBuffer: Math.round(num(opt['tallyd-rcvbuf'], 0, 'tallyd-rcvbuf')) } : {},
  };

  const started = Date.now();
  const m = await machine();
  console.log(machineText(m, searchOpts.serverOptions?.tallydRecvBuffer));
  console.log(
    `bench: ${profile}; ${fixedRate ? `fixed rate ${fixedRate} metrics/s` : `search, ${runs} run(s)`}; ${durationS} s trials; ` +
      `flushInterval ${FLUSH_INTERVAL} ms; pass = loss < ${MAX_LOSS * 100} % in Carbon`,
  );
  if (m.loadAvg1 > 0.5) console.log(`warning: load average ${m.loadAvg1} before the bench: other work on this machine skews the numbers`);
  const unmeasured = Object.keys(PLANNED_MODES);
  console.log(`not measured: ${unmeasured.join(', ')}: tallyd has no ZeroMQ ingest yet (extension point: PLANNED_MODES in bench/load.ts)`);
  if (modes.length === 0) {
    console.log('nothing to measure');
    await closeRedis();
    return 0;
  }
  const build = servers.includes('tallyd') ? ensureBuilt(!opt['no-build']) : 'not used';
  buildLoadgen();

  const work = mkdtempSync(path.join(BUILD_DIR, 'corpus-'));
  const results: SearchResult[] = [];
  const fixed: TrialResult[] = [];
  const summaries: Summary[] = [];
  let crashed = false;
  try {
    for (const mode of modes) {
      const file = path.join(work, `${mode.name}.bin`);
      const corpus = new Corpus(mode, names, file);
      const title = modeTitle(mode, names);
      console.log(`\n${title} (${corpus.datagrams} datagrams, ${corpus.bytes} bytes, looped)`);
      if (fixedRate) {
        for (const server of servers) {
          const t = await runTrial({ server, corpus, corpusFile: file, rate: fixedRate, durationS, serverOptions: searchOpts.serverOptions });
          fixed.push(t);
          progress(mode.name, 1, t);
          if (t.error) crashed = true;
        }
        continue;
      }
      for (let run = 1; run <= runs; run++) {
        // Alternate who goes first, so neither always gets the cooler machine.
        const order = run % 2 ? servers : [...servers].reverse();
        for (const server of order) {
          const earlier = results.filter((r) => r.mode === mode.name && r.server === server && r.lossFreeRate > 0);
          const start = earlier.length ? median(earlier.map((r) => r.lossFreeRate)) : undefined;
          const res = await search(server, corpus, file, run, { ...searchOpts, start, onTrial: (t) => progress(mode.name, run, t) });
          results.push(res);
          if (res.bound === 'error') crashed = true;
        }
      }
      const rows = servers.map((s) => summarize(mode.name, s, results));
      summaries.push(...rows);
      console.log(`\n${table(title, rows, m.nproc)}`);
    }
  } finally {
    rmSync(work, { recursive: true, force: true });
    await closeRedis();
  }

  if (summaries.length > 1) {
    console.log('\n== summary (medians)');
    for (const mode of modes) {
      const t = summaries.find((s) => s.mode === mode.name && s.server === 'tallyd');
      const s = summaries.find((x) => x.mode === mode.name && x.server === 'statsd');
      if (t && s) console.log(`${mode.name.padEnd(12)} tallyd/statsd ${ratio(t, s)}`);
    }
  }
  const file = saveJson({
    startedAt: new Date(started).toISOString(),
    seconds: Math.round((Date.now() - started) / 1000),
    profile,
    argv: process.argv.slice(2),
    machine: m,
    tallydBuild: build,
    settings: { modes: modes.map((x) => ({ ...x })), servers, runs, durationS, names, fixedRate, flushInterval: FLUSH_INTERVAL, maxLoss: MAX_LOSS, search: searchOpts },
    notMeasured: unmeasured.map((p) => ({ mode: p, requested: planned.includes(p), why: PLANNED_MODES[p] })),
    summary: summaries,
    searches: results,
    trials: fixed,
  });
  console.log(`\nresults: ${path.relative(ROOT, file)} (and bench/results/latest.json); ${Math.round((Date.now() - started) / 1000)} s`);
  if (crashed) console.log('a trial crashed: see "error" in the JSON');
  return crashed ? 1 : 0;
}

function progress(mode: string, run: number, t: TrialResult): void {
  const verdict = t.error ? `ERROR ${t.error.split('\n')[0]}` : t.pass ? 'pass' : 'FAIL';
  const extra = [
    t.generatorLimited ? `loadgen reached only ${t.achievedRate}/s` : '',
    t.overNames ? `${t.overNames} names over-counted` : '',
    t.gauges.wrongLastValue ? `${t.gauges.wrongLastValue}/${t.gauges.names} gauges wrong` : '',
  ].filter(Boolean);
  console.log(
    `  [${mode} run ${run}] ${t.server.padEnd(6)} ${String(t.rate).padStart(9)}/s  loss ${(t.loss * 100).toFixed(3).padStart(7)} %  ` +
      `cpu ${t.cpuPct.toFixed(0).padStart(3)} %  ${t.redisCpuPct === null ? '' : `redis ${t.redisCpuPct.toFixed(0)} %  `}` +
      `loadgen ${t.loadgenCpuPct.toFixed(0)} %  rss ${t.peakRssMB.toFixed(0)} MB  ${verdict}${extra.length ? ` (${extra.join('; ')})` : ''}`,
  );
}

/** Rebuilds dist/ when a file under src/ is newer than dist/main.js. Returns what was benchmarked. */
function ensureBuilt(build: boolean): string {
  const main = path.join(ROOT, 'dist', 'main.js');
  const newest = (dir: string): number =>
    readdirSync(dir, { withFileTypes: true }).reduce((t, e) => {
      const p = path.join(dir, e.name);
      return Math.max(t, e.isDirectory() ? newest(p) : statSync(p).mtimeMs);
    }, 0);
  if (existsSync(main) && statSync(main).mtimeMs >= newest(path.join(ROOT, 'src'))) return 'dist/ up to date';
  if (!build) {
    console.log('warning: dist/ is older than src/ (--no-build): benchmarking the old build');
    return 'stale dist/ (--no-build)';
  }
  console.log('building tallyd (npm run build) ...');
  try {
    execFileSync('npm', ['run', '--silent', 'build'], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
    return 'built';
  } catch (err) {
    if (!existsSync(main)) throw err;
    const e = err as { stdout?: Buffer; stderr?: Buffer };
    const why = `${e.stdout?.toString() ?? ''}${e.stderr?.toString() ?? ''}`.trim().split('\n').slice(0, 6).join('\n');
    // tsc emits JavaScript despite type errors, so dist/ is src/ as it is now, maybe without the latest Lua scripts.
    console.log(`warning: npm run build failed; benchmarking dist/ as it is:\n${why}`);
    return `build failed, dist/ as tsc left it: ${why}`;
  }
}

main().then(
  (code) => process.exit(code),
  (err: unknown) => {
    const e = err as Error;
    console.error(`bench: ${e instanceof UsageError ? e.message : (e.stack ?? String(err))}`);
    process.exit(2);
  },
);
