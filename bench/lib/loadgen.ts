/**
 * Builds bench/lib/loadgen.c on demand (into bench/results/.build/, which git
 * ignores) and runs it for one trial; or, for the ZeroMQ modes, starts
 * bench/lib/zmq-loadgen.ts, waits until it is connected (and subscribed) and
 * lets it go at the moment the trial chooses.
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, statSync } from 'node:fs';
import path from 'node:path';
import { ROOT } from './servers.js';

const SOURCE = path.join(ROOT, 'bench', 'lib', 'loadgen.c');
export const BUILD_DIR = path.join(ROOT, 'bench', 'results', '.build');
const BINARY = path.join(BUILD_DIR, 'loadgen');

export interface LoadgenReport {
  sent: number;
  elapsed_s: number;
  errors: number;
  loops: number;
  cpu_user_s: number;
  cpu_sys_s: number;
  max_behind_ms: number;
  /** UDP only: whether it sent with UDP GSO (see loadgen.c). */
  gso?: boolean;
  /** ZeroMQ only: seconds spent waiting for sends libzmq could not queue at once (PUSH backpressure). */
  blocked_s?: number;
}

/** Compiles the generator when the binary is missing or older than its source; returns its path. */
export function buildLoadgen(): string {
  mkdirSync(BUILD_DIR, { recursive: true });
  if (!existsSync(BINARY) || statSync(BINARY).mtimeMs < statSync(SOURCE).mtimeMs) {
    const cc = process.env.CC ?? 'cc';
    execFileSync(cc, ['-O2', '-Wall', '-Wextra', '-o', BINARY, SOURCE], { stdio: 'inherit' });
  }
  return BINARY;
}

/** How loadgen sends: UDP GSO (the default) or one datagram per message (`npm run bench -- --no-gso`). */
export const loadgenSettings = { gso: true };

/** Sends `count` datagrams of the corpus to 127.0.0.1:port at `datagramsPerSec`. */
export function runLoadgen(corpusFile: string, port: number, datagramsPerSec: number, count: number): Promise<LoadgenReport> {
  const args = [corpusFile, String(port), String(datagramsPerSec), String(count)];
  if (!loadgenSettings.gso) args.push('--no-gso');
  return collectReport(spawn(BINARY, args, { stdio: ['ignore', 'pipe', 'pipe'] }), 'loadgen');
}

/** A sender started and ready: go() starts the load and resolves with its report. */
export interface Sender {
  go(): Promise<LoadgenReport>;
  kill(): void;
}

const ZMQ_LOADGEN = path.join(ROOT, 'bench', 'lib', 'zmq-loadgen.ts');
/** A ZeroMQ generator that isn't connected (and, for PUB, subscribed to) by then has failed. */
const ZMQ_READY_TIMEOUT_MS = 15_000;

/**
 * Starts bench/lib/zmq-loadgen.ts (push or pub) towards tallyd's bound socket and
 * resolves once it is connected; `giveUpS` bounds the send window (a PUSH
 * generator held back by a slow server stops there, short of `count`).
 */
export function startZmqSender(
  corpusFile: string, endpoint: string, type: 'push' | 'pub', messagesPerSec: number, count: number, giveUpS: number,
): Promise<Sender> {
  const args = ['--import', 'tsx', ZMQ_LOADGEN, corpusFile, endpoint, type, String(messagesPerSec), String(count), String(giveUpS)];
  const proc = spawn(process.execPath, args, { cwd: ROOT, stdio: ['pipe', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  proc.stdout.on('data', (d: Buffer) => (out += d.toString()));
  proc.stderr.on('data', (d: Buffer) => (err += d.toString()));
  const kill = () => {
    if (proc.exitCode === null && proc.signalCode === null) proc.kill('SIGKILL');
  };
  return new Promise<Sender>((resolve, reject) => {
    const timer = setTimeout(() => {
      kill();
      reject(new Error(`zmq-loadgen not ready after ${ZMQ_READY_TIMEOUT_MS} ms: ${err.trim()}`));
    }, ZMQ_READY_TIMEOUT_MS);
    const exited = () => {
      clearTimeout(timer);
      reject(new Error(`zmq-loadgen exited before it was ready: ${err.trim() || out.trim()}`));
    };
    proc.once('exit', exited);
    const poll = () => {
      if (!out.includes('"ready"')) return;
      proc.stdout.off('data', poll);
      proc.off('exit', exited);
      clearTimeout(timer);
      const report = collectReport(proc, 'zmq-loadgen');
      report.catch(() => undefined); // a crash before go() is reported by go()
      const go = () => {
        proc.stdin.end('go\n');
        return report;
      };
      resolve({ go, kill });
    };
    proc.stdout.on('data', poll);
  });
}

/** The generator's report: its JSON line with `sent` (read as soon as it is printed), or an error if it exits without one. */
function collectReport(proc: ChildProcess, what: string): Promise<LoadgenReport> {
  return new Promise((resolve, reject) => {
    let out = '';
    let err = '';
    proc.stdout?.on('data', (d: Buffer) => {
      out += d.toString();
      for (const line of out.split('\n').slice(0, -1)) {
        if (!line.includes('"sent"')) continue;
        try {
          resolve(JSON.parse(line) as LoadgenReport);
        } catch {
          // not a report after all: the exit handler says so
        }
      }
    });
    proc.stderr?.on('data', (d: Buffer) => (err += d.toString()));
    proc.once('error', reject);
    proc.once('exit', (code) => reject(new Error(`${what} exited ${code} without a report: ${err.trim() || out.trim()}`)));
  });
}
