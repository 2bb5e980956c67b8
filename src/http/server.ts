/**
 * tallyd's HTTP server (node:http, no framework): /healthz, /readyz,
 * /metrics (Prometheus), the JSON API under /api/, and the status page.
 *
 * It runs in the main (ingest) thread, so nothing a request does may stall
 * ingest:
 * - every handler does bounded work (answers are capped: at most 500 names,
 *   one series over the retained periods, a fixed-size history ring) and any
 *   scan of Redis data goes in pieces with a setImmediate between them;
 * - at most MAX_CONCURRENT requests run at once in the process; more are
 *   answered 503 `{"error": "busy ..."}` at once and counted;
 * - slow clients are cut off: headersTimeout, requestTimeout, a keep-alive
 *   timeout, a cap on connections and on header size; a request with a body
 *   is refused (413) without reading it.
 *
 * Routing: handlers in `mounted` are tried first, in order (each returns
 * true when it served the request); then the route table (exact paths).
 * The status page is mounted here (`handlePage` from ./page.js). Anything
 * else is 404; methods other than GET and HEAD are 405; a failing handler answers 500 `{"error"}`,
 * logged (rate-limited), never a crash.
 */
import http, { type IncomingMessage, type ServerResponse } from 'node:http';
import type { HttpConfig } from '../config/types.js';
import { ListenError } from '../ingest/listen-error.js';
import type { Logger } from '../observability/logger.js';
import { RateLimitedLog } from '../observability/rate-limited-log.js';
import { handlePage } from './page.js';

/** A handler mounted before the route table (the status page): true when it served the request. */
export type HttpHandler = (req: IncomingMessage, res: ServerResponse) => boolean;

/** Handlers tried before the route table: the status page (`/`, `/index.html`, `/assets/*`). */
const MOUNTED: ReadonlyArray<HttpHandler> = [handlePage];

/** What a route answers; the server writes it (without the body for HEAD). */
export interface Reply {
  status: number;
  contentType: string;
  body: string | Buffer;
}

/** A route: the parsed query in, a reply out. A thrown HttpError answers its status; anything else 500. */
export type Route = (query: URLSearchParams) => Reply | Promise<Reply>;

/** An error with the status it answers (4xx for the client's mistakes). */
export class HttpError extends Error {
  constructor(readonly status: number, message: string) {
    super(message);
    this.name = 'HttpError';
  }
}

/** Requests handled at once; more are answered 503 at once. */
export const MAX_CONCURRENT = 16;
/** Open connections; more are refused by node:http. */
const MAX_CONNECTIONS = 256;
/** ms a client has to send its headers, and its whole request. */
const HEADERS_TIMEOUT_MS = 10_000;
const REQUEST_TIMEOUT_MS = 15_000;
const KEEP_ALIVE_TIMEOUT_MS = 5_000;
const MAX_HEADER_BYTES = 16 * 1024;

export function json(value: unknown, status = 200): Reply {
  return { status, contentType: 'application/json; charset=utf-8', body: JSON.stringify(value) };
}

export function text(body: string, status = 200): Reply {
  return { status, contentType: 'text/plain; charset=utf-8', body };
}

/** Counters of the server's own work and refusals (read by /metrics). */
export interface HttpCounters {
  requests: number;
  /** Requests answered 503 because MAX_CONCURRENT were running. */
  refusedBusy: number;
  /** Answers with a 5xx status from a failed handler. */
  errors: number;
}

export class HttpServer {
  private server: http.Server | null = null;
  private running = 0;
  private readonly errLog: RateLimitedLog;
  readonly counters: HttpCounters = { requests: 0, refusedBusy: 0, errors: 0 };

  constructor(
    private readonly cfg: HttpConfig,
    private readonly routes: ReadonlyMap<string, Route>,
    private readonly log: Logger,
    private readonly mounted: ReadonlyArray<HttpHandler> = MOUNTED,
  ) {
    this.errLog = new RateLimitedLog(log);
  }

  /** Listens; resolves with the bound port (the real one when port 0 was asked). */
  start(): Promise<number> {
    const server = http.createServer({ maxHeaderSize: MAX_HEADER_BYTES }, (req, res) => this.onRequest(req, res));
    server.headersTimeout = HEADERS_TIMEOUT_MS;
    server.requestTimeout = REQUEST_TIMEOUT_MS;
    server.keepAliveTimeout = KEEP_ALIVE_TIMEOUT_MS;
    server.maxConnections = MAX_CONNECTIONS;
    // Malformed requests, oversized headers and timeouts get node:http's own answers (400, 431, 408) and a close.
    this.server = server;
    const { address, port } = this.cfg;
    return new Promise((resolve, reject) => {
      const onError = (err: NodeJS.ErrnoException) => reject(new ListenError(err.code ?? 'ELISTEN', `http ${address}:${port} (http.port)`, err));
      server.once('error', onError);
      server.listen(port, address, () => {
        server.off('error', onError);
        const addr = server.address();
        const bound = typeof addr === 'object' && addr ? addr.port : port;
        this.log.info({ address, port: bound }, 'http listening');
        resolve(bound);
      });
    });
  }

  stop(): Promise<void> {
    const server = this.server;
    this.server = null;
    if (!server) return Promise.resolve();
    return new Promise((resolve) => {
      server.close(() => resolve());
      server.closeAllConnections();
    });
  }

  private onRequest(req: IncomingMessage, res: ServerResponse): void {
    this.counters.requests++;
    res.on('error', () => undefined);
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.setHeader('Allow', 'GET, HEAD');
      res.setHeader('Connection', 'close'); // its body, if any, is not read
      this.send(req, res, json({ error: `method ${req.method ?? '?'} not allowed: GET or HEAD` }, 405));
      return;
    }
    const length = Number(req.headers['content-length'] ?? 0);
    if (length > 0 || req.headers['transfer-encoding'] !== undefined) {
      res.setHeader('Connection', 'close');
      this.send(req, res, json({ error: 'a GET request takes no body' }, 413));
      return;
    }
    let url: URL;
    try {
      url = new URL(req.url ?? '/', 'http://localhost');
    } catch {
      this.send(req, res, json({ error: 'bad request target' }, 400));
      return;
    }
    for (const handle of this.mounted) {
      try {
        if (handle(req, res)) return;
      } catch (err) {
        this.fail(req, res, url.pathname, err);
        return;
      }
    }
    const route = this.routes.get(url.pathname);
    if (!route) {
      this.send(req, res, json({ error: `not found: ${url.pathname.slice(0, 200)}` }, 404));
      return;
    }
    if (this.running >= MAX_CONCURRENT) {
      this.counters.refusedBusy++;
      res.setHeader('Retry-After', '1');
      this.send(req, res, json({ error: `busy: ${this.running} requests already running (at most ${MAX_CONCURRENT}), try again` }, 503));
      return;
    }
    this.running++;
    let done = false;
    const finish = (): void => {
      if (!done) this.running--;
      done = true;
    };
    res.once('close', finish);
    Promise.resolve()
      .then(() => route(url.searchParams))
      .then(
        (reply) => this.send(req, res, reply),
        (err: unknown) => this.fail(req, res, url.pathname, err),
      )
      .finally(finish);
  }

  private fail(req: IncomingMessage, res: ServerResponse, path: string, err: unknown): void {
    if (err instanceof HttpError) {
      this.send(req, res, json({ error: err.message }, err.status));
      return;
    }
    this.counters.errors++;
    const message = err instanceof Error ? err.message : String(err);
    this.errLog.warn(() => ({ msg: 'http request failed', fields: { path: path.slice(0, 200), err: message } }));
    if (res.headersSent) res.destroy();
    else this.send(req, res, json({ error: message }, 500));
  }

  private send(req: IncomingMessage, res: ServerResponse, reply: Reply): void {
    if (res.writableEnded || res.destroyed) return;
    const body = typeof reply.body === 'string' ? Buffer.from(reply.body) : reply.body;
    res.writeHead(reply.status, {
      'Content-Type': reply.contentType,
      'Content-Length': body.length,
      'Cache-Control': 'no-store',
    });
    res.end(req.method === 'HEAD' ? undefined : body);
  }
}
