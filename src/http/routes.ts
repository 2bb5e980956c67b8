/**
 * The route table of the HTTP server (src/http/server.ts): path -> handler.
 * Each handler depends on a narrow view of the daemon (HttpContext), so a
 * route is a few lines and the server knows nothing of tallyd.
 *
 * - /healthz: 200 `ok\n` while the process runs (liveness).
 * - /readyz: the console's health facts (observability/health.ts) as JSON
 *   `{status: "up"|"down", reasons: string[]}`, 200 when up, else 503.
 * - /metrics: Prometheus text (metrics.ts).
 * - /api/status: `{version, pid, uptimeS, leader, health: HealthReport}`.
 * - /api/history: this process's figures over the last hour (self-history.ts).
 * - /api/names?q=&limit=: names of the newest kept committed period, every shard's (store/recent.ts).
 * - /api/series?name=: one name's values over the kept periods, from the shard that has it.
 */
import type { HealthFacts } from '../observability/health.js';
import type { RecentShards } from '../store/recent.js';
import type { PromMetrics } from './metrics.js';
import { HttpError, json, type Route, text } from './server.js';
import type { SelfHistory } from './self-history.js';

/** What the routes read (filled in by the Daemon). */
export interface HttpContext {
  readonly version: string;
  readonly startedAtMs: number;
  readonly health: Pick<HealthFacts, 'report'>;
  readonly metrics: Pick<PromMetrics, 'text' | 'contentType'>;
  readonly history: Pick<SelfHistory, 'answer'>;
  readonly recent: Pick<RecentShards, 'names' | 'series'>;
}

export const NAMES_MAX_LIMIT = 500;
const NAMES_DEFAULT_LIMIT = 100;
/** Longest q or name accepted (a Graphite name with tags is far shorter). */
const MAX_PARAM_CHARS = 1000;

function param(query: URLSearchParams, key: string, required: boolean): string | null {
  const all = query.getAll(key);
  if (all.length > 1) throw new HttpError(400, `${key} given ${all.length} times; give it once`);
  const value = all[0] ?? null;
  if (value === null && required) throw new HttpError(400, `missing query parameter ${key}`);
  if (value !== null && value.length > MAX_PARAM_CHARS) throw new HttpError(400, `${key} is longer than ${MAX_PARAM_CHARS} characters`);
  return value;
}

function limitOf(query: URLSearchParams): number {
  const raw = param(query, 'limit', false);
  if (raw === null) return NAMES_DEFAULT_LIMIT;
  const n = /^\d{1,4}$/.test(raw) ? Number(raw) : NaN;
  if (!(n >= 1 && n <= NAMES_MAX_LIMIT)) throw new HttpError(400, `limit must be an integer from 1 to ${NAMES_MAX_LIMIT}, got ${JSON.stringify(raw.slice(0, 40))}`);
  return n;
}

export function buildRoutes(ctx: HttpContext): Map<string, Route> {
  const routes = new Map<string, Route>();
  routes.set('/healthz', () => text('ok\n'));
  routes.set('/readyz', async () => {
    const r = await ctx.health.report();
    return json({ status: r.status, reasons: r.reasons }, r.status === 'up' ? 200 : 503);
  });
  // Concurrent scrapes share one exposition: at most one is being built at a time.
  let building: Promise<string> | null = null;
  routes.set('/metrics', async () => {
    building ??= (async () => ctx.metrics.text(await ctx.health.report()))().finally(() => (building = null));
    return { status: 200, contentType: ctx.metrics.contentType, body: await building };
  });
  routes.set('/api/status', async () => {
    const health = await ctx.health.report();
    return json({ version: ctx.version, pid: process.pid, uptimeS: Math.round((Date.now() - ctx.startedAtMs) / 1000), leader: health.leader, health });
  });
  routes.set('/api/history', () => json(ctx.history.answer()));
  routes.set('/api/names', async (query) => {
    const q = param(query, 'q', false) ?? '';
    return json(await ctx.recent.names(q, limitOf(query)));
  });
  routes.set('/api/series', async (query) => {
    const name = param(query, 'name', true) as string;
    if (name === '') throw new HttpError(400, 'name must not be empty');
    return json({ name, ...(await ctx.recent.series(name)) });
  });
  return routes;
}
