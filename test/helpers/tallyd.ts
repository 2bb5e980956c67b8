/**
 * Start tallyd for a test: in this process (Daemon), or as a child process
 * (for signals and kill -9). Listeners bind port 0 on loopback unless told
 * otherwise; the real ports are reported back.
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { writeFileSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { loadConfig } from '../../src/config/load.js';
import { Daemon } from '../../src/daemon.js';
import { createLogger } from '../../src/observability/logger.js';
import { REDIS_URL } from './redis.js';

export const ROOT = path.resolve(import.meta.dirname, '..', '..');

export type RawConfig = Record<string, unknown>;

/** A statsd-style raw config for tests: loopback, ephemeral ports, the test's prefix. */
export function testConfig(prefix: string, carbonPort: number | null, extra: RawConfig = {}): RawConfig {
  return {
    servers: [
      { server: 'udp', address: '127.0.0.1', port: 0 },
      { server: 'tcp', address: '127.0.0.1', port: 0 },
    ],
    mgmt_address: '127.0.0.1',
    mgmt_port: 0,
    graphiteHost: carbonPort === null ? null : '127.0.0.1',
    graphitePort: carbonPort ?? 2003,
    flushInterval: 1000,
    batchInterval: 100,
    leaseTtl: 3000,
    redis: { url: REDIS_URL, keyPrefix: prefix },
    log: { level: process.env.TEST_LOG_LEVEL ?? 'warn' },
    ...extra,
  };
}

export async function startDaemon(raw: RawConfig): Promise<Daemon> {
  const { config } = loadConfig({ file: null, env: {}, overrides: raw });
  const daemon = new Daemon(config, createLogger(config.log.level));
  await daemon.start();
  return daemon;
}

export interface ChildTallyd {
  proc: ChildProcess;
  output: () => string;
  /** Resolves with the exit code (or signal name). */
  exited: Promise<number | string>;
}

/**
 * Runs `src/main.ts` under tsx with a config file written from raw. The
 * test's own environment keeps REDIS_URL and TALLYD_REDIS_URL to itself:
 * they outrank the file's redis.url (as they should for an operator), and a
 * test that points tallyd at a redis-server of its own says so in the file.
 */
export function spawnTallyd(raw: RawConfig, env: NodeJS.ProcessEnv = {}): ChildTallyd {
  const file = configFile(raw);
  const proc = spawn(process.execPath, ['--import', 'tsx', path.join(ROOT, 'src', 'main.ts'), file], {
    cwd: ROOT,
    env: { ...withoutRedisUrl(process.env), ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  proc.stdout?.on('data', (d: Buffer) => (out += d.toString()));
  proc.stderr?.on('data', (d: Buffer) => (out += d.toString()));
  const exited = new Promise<number | string>((resolve) => proc.on('exit', (code, sig) => resolve(code ?? sig ?? -1)));
  return { proc, output: () => out, exited };
}

export async function waitForOutput(child: ChildTallyd, text: string, timeoutMs = 15_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!child.output().includes(text)) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for "${text}" in tallyd output:\n${child.output()}`);
    if (child.proc.exitCode !== null) throw new Error(`tallyd exited (${child.proc.exitCode}) before "${text}":\n${child.output()}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/**
 * The port a child's HTTP server bound (`http.port: 0` in tests): read from
 * its "http listening" log line, so the child must log at info level or
 * lower (`log: { level: 'info' }`).
 */
export async function waitForHttpPort(child: ChildTallyd, timeoutMs = 15_000): Promise<number> {
  await waitForOutput(child, '"msg":"http listening"', timeoutMs);
  const line = child.output().split('\n').find((l) => l.includes('"msg":"http listening"')) ?? '';
  const port = Number(/"port":(\d+)/.exec(line)?.[1]);
  if (!Number.isInteger(port) || port <= 0) throw new Error(`no port in tallyd's "http listening" line: ${line}`);
  return port;
}

export interface CheckResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs `src/main.ts --check` on a config file written from raw, in spawnTallyd's environment (env on top), for 30 s at most. */
export function checkTallyd(raw: RawConfig, env: NodeJS.ProcessEnv = {}): Promise<CheckResult> {
  const file = configFile(raw);
  return new Promise((resolve) => {
    execFile(process.execPath, ['--import', 'tsx', path.join(ROOT, 'src', 'main.ts'), '--check', file], { cwd: ROOT, env: { ...withoutRedisUrl(process.env), ...env }, timeout: 30_000 },
      (err, stdout, stderr) => resolve({ code: err === null ? 0 : Number((err as NodeJS.ErrnoException).code ?? 1), stdout, stderr }));
  });
}

/** raw, written to config.json in a fresh temporary directory: its path. */
function configFile(raw: RawConfig): string {
  const file = path.join(mkdtempSync(path.join(tmpdir(), 'tallyd-test-')), 'config.json');
  writeFileSync(file, JSON.stringify(raw, null, 2));
  return file;
}

function withoutRedisUrl(env: NodeJS.ProcessEnv): NodeJS.ProcessEnv {
  const out = { ...env };
  delete out.REDIS_URL;
  delete out.TALLYD_REDIS_URL;
  return out;
}
