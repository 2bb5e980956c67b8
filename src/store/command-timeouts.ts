/**
 * redis.commandTimeout: ioredis rejects a command that got no reply within
 * the bound with "Command timed out" (the connection stays up; a Redis that
 * hangs without failing, e.g. SIGSTOPped, is noticed this way). This counts
 * each such rejection and logs it, rate-limited, naming the setting. The
 * command may still run in Redis later; every write tallyd retries is
 * idempotent (merges carry a batch id, periods are committed once).
 */
import type { Command } from 'ioredis';
import type { RedisClient } from './client.js';
import type { Logger } from '../observability/logger.js';
import { RateLimitedLog } from '../observability/rate-limited-log.js';

const TIMEOUT_MESSAGE = 'Command timed out';

export function isCommandTimeout(err: unknown): boolean {
  return err instanceof Error && err.message === TIMEOUT_MESSAGE;
}

/**
 * Watches every command sent on `redis` (scripts and pipelines go through
 * sendCommand too). The watcher handles each command's promise, so a
 * command nobody awaits no longer shows as an unhandled rejection; the
 * Store awaits all of its commands.
 */
export function watchCommandTimeouts(redis: RedisClient, commandTimeoutMs: number, log: Logger, onTimeout: () => void): void {
  const limited = new RateLimitedLog(log);
  let count = 0;
  const target = redis as { sendCommand(command: Command, ...rest: unknown[]): unknown };
  const send = target.sendCommand.bind(redis);
  target.sendCommand = (command: Command, ...rest: unknown[]) => {
    const p = send(command, ...rest);
    command.promise.then(undefined, (err: unknown) => {
      if (!isCommandTimeout(err)) return;
      count++;
      onTimeout();
      limited.warn(() => ({
        msg: `redis did not answer within redis.commandTimeout (${commandTimeoutMs} ms); the command is retried or reported by its caller`,
        fields: { command: command.name, commandTimeout: commandTimeoutMs, redisTimeouts: count },
      }));
    });
    return p;
  };
}
