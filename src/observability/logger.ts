/**
 * pino logger factory. One root logger per process; each component takes a
 * child with its name. Nothing logs per packet: bad input goes through
 * RateLimitedLog.
 *
 * log.format: 'json' writes pino's JSON lines; 'pretty' one readable line per
 * entry through pino-pretty, in this thread (no transport thread), loaded only
 * when asked for; 'auto' is pretty when stderr is a terminal. Both write to
 * fd 2 asynchronously (SonicBoom).
 */
import { createRequire } from 'node:module';
import { pino, type DestinationStream, type Logger } from 'pino';
import type { LogConfig } from '../config/types.js';

export type { Logger };

export type LogFormat = LogConfig['format'];

/** 'auto' made concrete: pretty when stderr is a terminal (decide in the main thread; a worker's stderr is a pipe). */
export function resolveLogFormat(format: LogFormat, isTty = process.stderr.isTTY === true): 'pretty' | 'json' {
  if (format === 'auto') return isTty ? 'pretty' : 'json';
  return format;
}

interface PrettyOptions {
  destination: DestinationStream;
  colorize: boolean;
  singleLine: boolean;
  translateTime: string;
  ignore: string;
  messageFormat: string;
}

function prettyStream(destination: DestinationStream, colorize: boolean): DestinationStream {
  // pino-pretty is CommonJS; loading it takes a few tens of ms (bench/README.md, figures once quoted in src/), so only the pretty format pays.
  const pretty = createRequire(import.meta.url)('pino-pretty') as (opts: PrettyOptions) => DestinationStream;
  return pretty({
    destination,
    colorize,
    singleLine: true,
    translateTime: 'SYS:HH:MM:ss.l',
    ignore: 'pid,hostname,component',
    messageFormat: '{if component}[{component}] {end}{msg}',
  });
}

/**
 * `log` is log.level alone (JSON) or a LogConfig; a given destination gets
 * JSON lines (tests read them).
 */
export function createLogger(log: string | LogConfig, destination?: NodeJS.WritableStream): Logger {
  const level = typeof log === 'string' ? log : log.level;
  const format = typeof log === 'string' || destination !== undefined ? 'json' : resolveLogFormat(log.format);
  const fd2 = pino.destination({ fd: 2, sync: false });
  const dest = destination ?? (format === 'pretty' ? prettyStream(fd2, process.stderr.isTTY === true) : fd2);
  return pino(
    {
      level,
      base: { pid: process.pid },
      timestamp: pino.stdTimeFunctions.isoTime,
      formatters: { level: (label) => ({ level: label }) },
    },
    dest,
  );
}

/** Cut user input for logging: printable, at most `max` characters. */
export function quote(text: string, max = 200): string {
  const cut = text.length > max ? `${text.slice(0, max)}…(${text.length} chars)` : text;
  return JSON.stringify(cut);
}
