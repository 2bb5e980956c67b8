#!/usr/bin/env node
/**
 * CLI: argv -> loadConfig -> Daemon; SIGINT/SIGTERM -> daemon.stop(), exit 0.
 * Exit codes: 0 clean stop, 1 runtime failure (redis unreachable, port in
 * use; for --check: something the config needs does not answer), 2 bad usage
 * or bad config.
 */
import { readFileSync } from 'node:fs';
import { checkReachable } from './check.js';
import { DEFAULTS } from './config/defaults.js';
import { ConfigError } from './config/errors.js';
import { loadConfig } from './config/load.js';
import { redactConfig } from './config/redact.js';
import type { Config } from './config/types.js';
import { reportToPrimary, runPrimary, workerIndex } from './cluster.js';
import { Daemon } from './daemon.js';
import { nativeAddon, nativeBuildHelp } from './native/addon.js';
import { createLogger, resolveLogFormat, type Logger } from './observability/logger.js';
import { EmbeddedRedis, INSTALL_REDIS, planRedis } from './store/embedded-redis.js';
import { StoreError } from './store/errors.js';

const USAGE = `Usage: tallyd [options] [config-file]

A statsd-compatible metrics aggregator: statsd over UDP/TCP and ZeroMQ
status messages in, aggregation state in Redis, Graphite plaintext or pickle
out to Carbon (at least once), or statsd's console backend.

  config-file      an Etsy statsd config (JS object literal or JSON) or YAML;
                   ZeroMQ sockets are {"server": "zmq", ...} entries of its
                   servers array; without a file, statsd's defaults (UDP 8125,
                   console 8126)
  -h, --help       show this help
  -v, --version    print the version
  --check          load and validate the config, print it (passwords hidden)
                   on stdout, then check on stderr what it needs: Redis (PING,
                   version, data under the key prefix), Carbon (TCP connect),
                   the native addon; exit 0 when all answer, 1 when one does
                   not, 2 for a bad config

Environment:
  REDIS_URL                 overrides redis.url
  TALLYD_REDIS_URL          same, takes precedence over REDIS_URL
  TALLYD_REDIS_KEY_PREFIX   overrides redis.keyPrefix
  TALLYD_REDIS_PASSWORD     overrides redis.password (for redis.nodes or url)
  TALLYD_FLUSH_INTERVAL     overrides flushInterval (ms)
  TALLYD_LOG_LEVEL          overrides log.level
  XDG_STATE_HOME            the trial Redis keeps its data in
                            $XDG_STATE_HOME/tallyd/trial-redis (default
                            ~/.local/state/tallyd/trial-redis)

Redis: when nothing answers at the default redis.url and redis-server is
installed, tallyd starts a private one for a trial (loopback, a free port,
data in the folder above, stopped with tallyd); redis.embedded: "never"
turns that off, "always" forces it.

HTTP: with an http section (http: { port: 8127, address: "127.0.0.1" }, as in
the shipped config/tallyd.conf.js) tallyd serves /healthz, /readyz, /metrics
(Prometheus) and a status page with live graphs at /; without it, no HTTP.

Every key: docs/config.md. Running it in production: docs/production.md.

Logs: readable lines when stderr is a terminal, JSON lines otherwise
(log.format: "auto", "pretty", "json").

Signals: SIGINT/SIGTERM stop listening, merge the last batch into Redis, exit 0.
A second signal exits at once, with 1 (with workers: 1; under npm the same
signal again within 1 s is not a second one: npm passes on a process
group's signal).
Started by npm (npm start, npx tallyd), tallyd also stops when the shell npm
started it with goes away.
`;

/** How often a tallyd started by npm looks whether its parent (npm's shell) is still there. */
const PARENT_POLL_MS = 500;

/**
 * The signal that began the stop, again within this long, is the same signal, not a second one. A SIGINT or
 * SIGTERM sent to a process group (a terminal's Ctrl-C, a supervisor's or a CI runner's cancel) reaches tallyd
 * and its parent alike, and a parent that passes signals on sends tallyd its copy too: npm does, for the script
 * it runs (`npm start` execs tallyd, so npm is the parent), a few ms after the group's. An operator's second
 * Ctrl-C comes later than this and still forces the exit.
 */
const SAME_SIGNAL_MS = 1000;

/** Resolves log.format's 'auto' here (a worker thread's stderr is never a terminal) and swaps in a redis url. */
function withRuntime(config: Config, redisUrl: string | null): Config {
  return Object.freeze({
    ...config,
    log: Object.freeze({ ...config.log, format: resolveLogFormat(config.log.format) }),
    redis: redisUrl === null ? config.redis : Object.freeze({ ...config.redis, url: redisUrl }),
  });
}

/** The fallback to node:dgram is a warning that says why and how to fix it. */
function warnNoNativeReader(config: Config, log: Logger): void {
  if (!config.servers.some((s) => s.server === 'udp' && s.udpReader === 'auto')) return;
  const lib = nativeAddon();
  if (typeof lib !== 'string') return;
  if (process.env.TALLYD_SKIP_NATIVE === '1') {
    log.info('TALLYD_SKIP_NATIVE=1: UDP is read with node:dgram');
    return;
  }
  log.warn(`native UDP reader not available, so UDP is read with node:dgram (several times the CPU per datagram): ${lib}; ${nativeBuildHelp()}`);
}

/** What to add to "redis unreachable" so that the message names a way forward. */
function unreachableHint(config: Config): string {
  const never = config.redis.embedded === 'never' && config.redis.url === DEFAULTS.redis.url ? ' (redis.embedded is "never", so no private trial one)' : '';
  return `${never}; start a Redis there (Debian/Ubuntu: ${INSTALL_REDIS}) or point redis.url (REDIS_URL) at a running one`;
}

/**
 * npm runs scripts with `sh -c`, and on SIGTERM signals that shell, which dies
 * without passing it on (dash does not exec the command): seen from here, the
 * parent goes away. Under npm that means "stop".
 */
function watchParent(stop: (parent: number) => void): void {
  if (process.env.npm_lifecycle_event === undefined) return;
  const parent = process.ppid;
  const timer = setInterval(() => {
    if (process.ppid === parent) return;
    clearInterval(timer);
    stop(parent);
  }, PARENT_POLL_MS);
  timer.unref();
}

function version(): string {
  const pkg = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string };
  return pkg.version;
}

async function main(argv: string[]): Promise<number> {
  let file: string | null = null;
  let check = false;
  for (const arg of argv) {
    if (arg === '-h' || arg === '--help') {
      process.stdout.write(USAGE);
      return 0;
    }
    if (arg === '-v' || arg === '--version') {
      process.stdout.write(`tallyd ${version()}\n`);
      return 0;
    }
    if (arg === '--check') {
      check = true;
    } else if (arg.startsWith('-')) {
      process.stderr.write(`tallyd: unknown option ${arg}\n\n${USAGE}`);
      return 2;
    } else if (file === null) {
      file = arg;
    } else {
      process.stderr.write(`tallyd: only one config file, got ${file} and ${arg}\n`);
      return 2;
    }
  }

  let loaded;
  try {
    loaded = loadConfig({ file, env: process.env });
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`tallyd: bad config\n${err.message}\n`);
      return 2;
    }
    throw err;
  }
  const { warnings } = loaded;
  let config = withRuntime(loaded.config, null);
  const log = createLogger(config.log);
  for (const w of warnings) log.warn(`config: ${w}`);
  if (check) {
    process.stdout.write(JSON.stringify(redactConfig(loaded.config), null, 2) + '\n');
    const report = await checkReachable(config);
    process.stderr.write(`${report.lines.join('\n')}\n`);
    return report.ok ? 0 : 1;
  }
  const worker = workerIndex();
  let trial: EmbeddedRedis | null = null;
  if (worker === null) {
    log.info({ config: config.source ?? '(defaults)' }, 'starting tallyd');
    warnNoNativeReader(config, log);
    const plan = await planRedis(config.redis, DEFAULTS.redis.url);
    if (plan.kind === 'fail') return fail(log, plan.message);
    if (plan.kind === 'embed') {
      try {
        trial = await EmbeddedRedis.start(plan.bin, plan.dir, log.child({ component: 'trial-redis' }));
      } catch (err) {
        return fail(log, (err as Error).message);
      }
      log.warn({ url: trial.url, redisPid: trial.pid, dir: trial.dir },
        `${plan.why}: started a private redis-server for a trial; its data stays in ${trial.dir}, and it stops with tallyd`);
      config = withRuntime(config, trial.url);
      process.env.TALLYD_REDIS_URL = trial.url; // cluster workers inherit it
    }
  }
  try {
    return await run(config, worker, log);
  } finally {
    await trial?.stop();
    if (trial !== null) log.info({ dir: trial.dir }, 'trial redis-server stopped');
  }
}

function fail(log: Logger, message: string): number {
  log.fatal(message);
  log.flush();
  process.stderr.write(`tallyd: ${message}\n`);
  return 1;
}

async function run(config: Config, worker: number | null, log: Logger): Promise<number> {
  if (worker === null && config.workers > 1) {
    // cluster.ts's SIGTERM handler stops the workers.
    watchParent(() => process.kill(process.pid, 'SIGTERM'));
    return runPrimary(config.workers, log);
  }

  const bindings = worker === null ? {} : { worker };
  const daemon = new Daemon(config, log.child(bindings), { zmq: (worker ?? 0) === 0 }, bindings);

  // The handlers go in before start(): a SIGINT/SIGTERM while starting (or the moment "tallyd is up" reaches a
  // terminal, before this function's next line would have run) stops cleanly instead of killing the process
  // by the signal's default action (exit 130/143 with a batch received and not merged).
  let started = false;
  let starting: Promise<void> = Promise.resolve();
  let settle: (code: number) => void = () => undefined;
  const stopped = new Promise<number>((resolve) => (settle = resolve));
  let first: { sig: NodeJS.Signals; atMs: number } | null = null;
  const underNpm = process.env.npm_lifecycle_event !== undefined;
  const onSignal = (sig: NodeJS.Signals) => {
    const atMs = performance.now();
    if (first !== null) {
      // A worker may get the terminal's SIGINT and the primary's SIGTERM: both mean "stop".
      if (worker !== null) return;
      // Under npm (npm start, npx tallyd) npm passes on the signal a process group got, so the same signal arrives
      // twice; started otherwise (systemd, a shell, node dist/main.js) a second Ctrl-C is the operator's.
      if (underNpm && sig === first.sig && atMs - first.atMs < SAME_SIGNAL_MS) {
        log.info({ sig }, `${sig} again within ${SAME_SIGNAL_MS} ms: the same stop (npm passes on a process group's signal); send it again to exit at once`);
        return;
      }
      log.warn({ sig }, 'second signal: exiting without waiting');
      settle(1);
      return;
    }
    first = { sig, atMs };
    log.info({ sig }, started ? 'stopping' : 'stopping once started');
    // A failed start is reported by the start path below; stop() then has nothing left to do.
    starting.then(() => daemon.stop(), () => undefined).then(
      () => settle(0),
      (err: unknown) => {
        log.error({ err: (err as Error).message }, 'error while stopping');
        settle(1);
      },
    );
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);

  starting = daemon.start();
  // A second signal while starting leaves without waiting for start() (a Redis that does not answer, say).
  const early = await Promise.race([starting.then(() => null, (err: unknown) => (err instanceof Error ? err : new Error(String(err)))), stopped.then((code) => ({ code }))]);
  if (early instanceof Error) {
    const hint = early instanceof StoreError && early.code === 'EREDIS_UNREACHABLE' && worker === null ? unreachableHint(config) : '';
    reportToPrimary({ type: 'failed', error: early.message });
    return fail(log, `${early.message}${hint}`);
  }
  if (early !== null) return early.code;
  started = true;
  reportToPrimary({ type: 'up' });
  if (worker === null) {
    watchParent((parent) => {
      log.info({ parent }, 'the shell npm started tallyd with went away (npm was stopped)');
      // A process group's signal stops tallyd and kills that shell alike: stopping already, this is no second signal.
      if (first === null) onSignal('SIGTERM');
    });
  }
  return stopped;
}

main(process.argv.slice(2)).then(
  (code) => {
    // Let pino's async destination drain before leaving.
    setTimeout(() => process.exit(code), 50);
  },
  (err: unknown) => {
    process.stderr.write(`tallyd: ${(err as Error).stack ?? String(err)}\n`);
    process.exit(1);
  },
);
