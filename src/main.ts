#!/usr/bin/env node
/**
 * CLI: argv -> loadConfig -> Daemon; SIGINT/SIGTERM -> daemon.stop(), exit 0.
 * Exit codes: 0 clean stop, 1 runtime failure (redis unreachable, port in
 * use), 2 bad usage or bad config.
 */
import { readFileSync } from 'node:fs';
import { ConfigError } from './config/errors.js';
import { loadConfig } from './config/load.js';
import { redactConfig } from './config/redact.js';
import { reportToPrimary, runPrimary, workerIndex } from './cluster.js';
import { Daemon } from './daemon.js';
import { createLogger } from './observability/logger.js';

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
  --check          load and validate the config, print it (passwords hidden),
                   and exit

Environment:
  REDIS_URL                 overrides redis.url
  TALLYD_REDIS_URL          same, takes precedence over REDIS_URL
  TALLYD_REDIS_KEY_PREFIX   overrides redis.keyPrefix
  TALLYD_FLUSH_INTERVAL     overrides flushInterval (ms)
  TALLYD_LOG_LEVEL          overrides log.level

Signals: SIGINT/SIGTERM stop listening, merge the last batch into Redis, exit 0.
`;

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
  const { config, warnings } = loaded;
  const log = createLogger(config.log.level);
  for (const w of warnings) log.warn(`config: ${w}`);
  if (check) {
    process.stdout.write(JSON.stringify(redactConfig(config), null, 2) + '\n');
    return 0;
  }
  const worker = workerIndex();
  if (worker === null) log.info({ config: config.source ?? '(defaults)' }, 'starting tallyd');
  if (worker === null && config.workers > 1) return runPrimary(config.workers, log);

  const bindings = worker === null ? {} : { worker };
  const daemon = new Daemon(config, log.child(bindings), { zmq: (worker ?? 0) === 0 }, bindings);
  try {
    await daemon.start();
  } catch (err) {
    const e = err as Error;
    log.fatal(e.message);
    log.flush();
    process.stderr.write(`tallyd: ${e.message}\n`);
    reportToPrimary({ type: 'failed', error: e.message });
    return 1;
  }
  reportToPrimary({ type: 'up' });

  return new Promise<number>((resolve) => {
    let signals = 0;
    const onSignal = (sig: NodeJS.Signals) => {
      signals++;
      // A worker may get the terminal's SIGINT and the primary's SIGTERM: both mean "stop".
      if (signals > 1 && worker !== null) return;
      if (signals > 1) {
        log.warn({ sig }, 'second signal: exiting without waiting');
        resolve(1);
        return;
      }
      log.info({ sig }, 'stopping');
      daemon.stop().then(
        () => resolve(0),
        (err: unknown) => {
          log.error({ err: (err as Error).message }, 'error while stopping');
          resolve(1);
        },
      );
    };
    process.on('SIGINT', onSignal);
    process.on('SIGTERM', onSignal);
  });
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
