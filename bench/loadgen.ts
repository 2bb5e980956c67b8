/**
 * Builds bench/loadgen.c on demand (into bench/results/.build/, which git
 * ignores) and runs it for one trial.
 */
import { execFileSync, spawn } from 'node:child_process';
import { existsSync, mkdirSync, statSync } from 'node:fs';
import path from 'node:path';
import { ROOT } from './servers.js';

const SOURCE = path.join(ROOT, 'bench', 'loadgen.c');
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

/** Sends `count` datagrams of the corpus to 127.0.0.1:port at `datagramsPerSec`. */
export function runLoadgen(corpusFile: string, port: number, datagramsPerSec: number, count: number): Promise<LoadgenReport> {
  return new Promise((resolve, reject) => {
    const proc = spawn(BINARY, [corpusFile, String(port), String(datagramsPerSec), String(count)], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    proc.stdout.on('data', (d: Buffer) => (out += d.toString()));
    proc.stderr.on('data', (d: Buffer) => (err += d.toString()));
    proc.once('error', reject);
    proc.once('exit', (code) => {
      const line = out.trim().split('\n').at(-1) ?? '';
      try {
        resolve(JSON.parse(line) as LoadgenReport);
      } catch {
        reject(new Error(`loadgen exited ${code} without a report: ${err.trim() || out.trim()}`));
      }
    });
  });
}
