/**
 * The route table of the HTTP server (src/http/server.ts): path -> handler.
 * Each handler depends on a narrow view of the daemon (HttpContext), so a
 * route is a few lines and the server knows nothing of tallyd.
 */
import { type Route, text } from './server.js';

/** What the routes read (filled in by the Daemon). */
export interface HttpContext {
  readonly startedAtMs: number;
}

export function buildRoutes(_ctx: HttpContext): Map<string, Route> {
  const routes = new Map<string, Route>();
  // Liveness: the process runs and its event loop answers.
  routes.set('/healthz', () => text('ok\n'));
  return routes;
}
