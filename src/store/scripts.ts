/**
 * Loads the Lua scripts under ./scripts once at start: defineCommand for the
 * EVALSHA fast path, plus SCRIPT LOAD so a syntax error fails the start
 * rather than the first flush. A line `--#include <file>.lua` is replaced by
 * ./scripts/includes/<file>.lua (Lua shared by several scripts, never copied).
 */
import { readFileSync } from 'node:fs';
import type { RedisClient } from './client.js';
import { StoreError } from './errors.js';

export const SCRIPTS = {
  merge: 'mergeBatch-11.lua',
  close: 'closePeriod-8.lua',
  commit: 'commitPeriod-14.lua',
  compact: 'compactParts-3.lua',
  forgetIdle: 'forgetIdle-11.lua',
  claimOutbox: 'claimOutbox-4.lua',
  ackOutbox: 'ackOutbox-5.lua',
  statOutbox: 'statOutbox-2.lua',
  lease: 'acquireLease-1.lua',
  releaseLease: 'releaseLease-1.lua',
} as const;
export type ScriptName = keyof typeof SCRIPTS;

export type ScriptArg = string | Buffer | number;
/**
 * A defined script, called with ONE array (KEYS then ARGV): ioredis flattens it
 * into the command. Never spread a batch into call arguments: V8 overflows
 * its stack past ~100k arguments, and a batch or a period can be bigger.
 */
export type ScriptFn = (keysAndArgs: ScriptArg[]) => Promise<unknown>;

function numKeys(file: string): number {
  const m = /-(\d+)\.lua$/.exec(file);
  if (!m?.[1]) throw new Error(`script file name must end in -<numKeys>.lua: ${file}`);
  return Number(m[1]);
}

const INCLUDE = /^--#include ([\w.-]+\.lua)[ \t]*$/gm;

/** A script's text with its `--#include` lines inlined (includes do not nest). */
export function scriptSource(file: string): string {
  const lua = readFileSync(new URL(`./scripts/${file}`, import.meta.url), 'utf8');
  return lua.replace(INCLUDE, (_line, inc: string) => readFileSync(new URL(`./scripts/includes/${inc}`, import.meta.url), 'utf8'));
}

/** The ioredis command a script is defined as (for pipelines). */
export function scriptCommand(name: ScriptName): string {
  return `tallyd_${name}`;
}

export async function loadScripts(redis: RedisClient): Promise<Record<ScriptName, ScriptFn>> {
  const fns = {} as Record<ScriptName, ScriptFn>;
  for (const [name, file] of Object.entries(SCRIPTS) as [ScriptName, string][]) {
    const lua = scriptSource(file);
    try {
      await redis.script('LOAD', lua);
    } catch (err) {
      throw new StoreError('ESCRIPT', `Lua script ${file} failed to load: ${(err as Error).message}`, { cause: err });
    }
    const cmd = scriptCommand(name);
    redis.defineCommand(cmd, { numberOfKeys: numKeys(file), lua });
    const bound = (redis as unknown as Record<string, ScriptFn>)[cmd];
    if (!bound) throw new StoreError('ESCRIPT', `defineCommand did not register ${cmd}`);
    fns[name] = bound.bind(redis);
  }
  return fns;
}
