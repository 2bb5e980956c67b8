/**
 * The status page's files: `/` (and `/index.html`), and `/assets/<file>` for
 * the page's script and stylesheet (the files of `http/page/`, beside this
 * module in src/ and in dist/) and uPlot's browser build, served from the
 * `uplot` package itself, so nothing comes from another host.
 *
 * What can be served is a fixed table built once from those two places, so
 * a request path is only ever looked up, never joined to a directory: `..`,
 * encoded slashes and the like find nothing and get a 404.
 *
 * Caching: every answer carries a strong ETag (content hash) and
 * `Cache-Control: no-cache`, so a browser revalidates and gets a 304 when
 * nothing changed; a new tallyd version's page is picked up at once.
 */
import { createHash } from 'node:crypto';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { createRequire } from 'node:module';
import path from 'node:path';

/** The folder of the page's own files. */
export const PAGE_DIR = path.join(import.meta.dirname, 'page');

const CONTENT_TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.ico': 'image/x-icon',
};

/** uPlot's browser build: the global-script bundle and its stylesheet. */
const UPLOT_FILES = ['uPlot.iife.min.js', 'uPlot.min.css'];

interface Asset {
  body: Buffer;
  contentType: string;
  etag: string;
}

let table: Map<string, Asset> | null = null;

function asset(file: string): Asset {
  const body = readFileSync(file);
  const contentType = CONTENT_TYPES[path.extname(file)] ?? 'application/octet-stream';
  return { body, contentType, etag: `"${createHash('sha1').update(body).digest('base64url')}"` };
}

/** URL path -> file, built once: the page folder's regular files and uPlot's two. */
export function pageAssets(): Map<string, Asset> {
  if (table) return table;
  const t = new Map<string, Asset>();
  for (const name of readdirSync(PAGE_DIR)) {
    const file = path.join(PAGE_DIR, name);
    if (!statSync(file).isFile() || !(path.extname(name) in CONTENT_TYPES)) continue;
    t.set(`/assets/${name}`, asset(file));
  }
  const index = t.get('/assets/index.html');
  if (!index) throw new Error(`status page: ${path.join(PAGE_DIR, 'index.html')} is missing (is http/page copied by the build?)`);
  t.delete('/assets/index.html');
  t.set('/', index);
  t.set('/index.html', index);
  const uplotDir = path.dirname(createRequire(import.meta.url).resolve('uplot'));
  for (const name of UPLOT_FILES) t.set(`/assets/uplot/${name}`, asset(path.join(uplotDir, name)));
  table = t;
  return t;
}

function sendJson(res: ServerResponse, status: number, error: string, headers: Record<string, string> = {}): void {
  const body = JSON.stringify({ error });
  res.writeHead(status, { 'Content-Type': 'application/json; charset=utf-8', 'Content-Length': Buffer.byteLength(body), ...headers });
  res.end(body);
}

/** True when the path is the page's: `/`, `/index.html` or anything under `/assets/`. */
export function isPagePath(pathname: string): boolean {
  return pathname === '/' || pathname === '/index.html' || pathname.startsWith('/assets/');
}

/**
 * Serves the request when its path is the page's and returns true; returns
 * false (and writes nothing) for any other path, for the server's next route.
 */
export function handlePage(req: IncomingMessage, res: ServerResponse): boolean {
  const url = req.url ?? '/';
  const q = url.indexOf('?');
  const pathname = q === -1 ? url : url.slice(0, q);
  if (!isPagePath(pathname)) return false;
  if (req.method !== 'GET' && req.method !== 'HEAD') {
    sendJson(res, 405, `method ${req.method ?? '?'} not allowed: the status page answers GET and HEAD`, { Allow: 'GET, HEAD' });
    return true;
  }
  // A missing page folder throws: the server answers 500 with the message, counts and logs it.
  const a = pageAssets().get(pathname);
  if (!a) {
    sendJson(res, 404, `no such asset: ${pathname.slice(0, 200)}`);
    return true;
  }
  const headers = { ETag: a.etag, 'Cache-Control': 'no-cache', 'X-Content-Type-Options': 'nosniff' };
  if (req.headers['if-none-match'] === a.etag) {
    res.writeHead(304, headers);
    res.end();
    return true;
  }
  res.writeHead(200, { ...headers, 'Content-Type': a.contentType, 'Content-Length': a.body.length });
  res.end(req.method === 'HEAD' ? undefined : a.body);
  return true;
}
