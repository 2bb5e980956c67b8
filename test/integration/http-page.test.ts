/**
 * The status page's files through a real node:http server and real requests:
 * content types, ETag revalidation, HEAD, 405, uPlot from the package, and
 * no way out of the asset table (traversal, encoded or not, gets a 404).
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import path from 'node:path';
import { createRequire } from 'node:module';
import { after, before, describe, test } from 'node:test';
import { handlePage, PAGE_DIR } from '../../src/http/page.js';

let server: http.Server;
let base = '';
let port = 0;

before(async () => {
  server = http.createServer((req, res) => {
    if (handlePage(req, res)) return;
    res.writeHead(404, { 'Content-Type': 'application/json' });
    res.end('{"error":"not the page"}');
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  port = (server.address() as net.AddressInfo).port;
  base = `http://127.0.0.1:${port}`;
});

after(() => new Promise<void>((resolve) => server.close(() => resolve())));

/** A request with the path sent as written (fetch would normalize `..` away). */
function rawGet(rawPath: string): Promise<{ status: number; body: string; headers: http.IncomingHttpHeaders }> {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port, path: rawPath, method: 'GET' }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (d: string) => (body += d));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body, headers: res.headers }));
    });
    req.on('error', reject);
    req.end();
  });
}

describe('status page files', () => {
  test('/ and /index.html serve index.html as HTML; the script and stylesheet it links are served with their types', async () => {
    const html = readFileSync(path.join(PAGE_DIR, 'index.html'), 'utf8');
    for (const p of ['/', '/index.html', '/?refresh=1']) {
      const res = await fetch(base + p);
      assert.equal(res.status, 200, p);
      assert.equal(res.headers.get('content-type'), 'text/html; charset=utf-8');
      assert.equal(res.headers.get('cache-control'), 'no-cache');
      assert.equal(await res.text(), html);
    }
    const linked = [...html.matchAll(/(?:src|href)="(\/assets\/[^"]+)"/g)].map((m) => m[1]!);
    assert.deepEqual(linked.sort(), ['/assets/app.js', '/assets/style.css', '/assets/uplot/uPlot.iife.min.js', '/assets/uplot/uPlot.min.css']);
    for (const p of linked) {
      const res = await fetch(base + p);
      assert.equal(res.status, 200, p);
      const want = p.endsWith('.js') ? 'text/javascript; charset=utf-8' : 'text/css; charset=utf-8';
      assert.equal(res.headers.get('content-type'), want, p);
      assert.ok((await res.arrayBuffer()).byteLength > 0, p);
    }
  });

  test('uPlot comes from the installed uplot package, byte for byte', async () => {
    const dir = path.dirname(createRequire(import.meta.url).resolve('uplot'));
    for (const f of ['uPlot.iife.min.js', 'uPlot.min.css']) {
      const res = await fetch(`${base}/assets/uplot/${f}`);
      assert.equal(res.status, 200);
      assert.deepEqual(Buffer.from(await res.arrayBuffer()), readFileSync(path.join(dir, f)));
    }
  });

  test('a matching If-None-Match gets a 304 without a body; HEAD gets the headers without a body', async () => {
    const first = await fetch(`${base}/assets/app.js`);
    const etag = first.headers.get('etag');
    assert.match(etag ?? '', /^"[A-Za-z0-9_-]+"$/);
    const again = await fetch(`${base}/assets/app.js`, { headers: { 'If-None-Match': etag! } });
    assert.equal(again.status, 304);
    assert.equal(await again.text(), '');
    const stale = await fetch(`${base}/assets/app.js`, { headers: { 'If-None-Match': '"other"' } });
    assert.equal(stale.status, 200);
    const head = await fetch(`${base}/assets/app.js`, { method: 'HEAD' });
    assert.equal(head.status, 200);
    assert.equal(head.headers.get('content-length'), String(readFileSync(path.join(PAGE_DIR, 'app.js')).length));
    assert.equal(await head.text(), '');
  });

  test('paths out of the asset table get a JSON 404, however they are spelled', async () => {
    const attempts = [
      '/assets/../package.json',
      '/assets/../../package.json',
      '/assets/%2e%2e/%2e%2e/package.json',
      '/assets/..%2f..%2fpackage.json',
      '/assets/%2E%2E%2Fpage.ts',
      '/assets/uplot/../../../../package.json',
      '/assets/uplot/package.json',
      '/assets/uplot/uPlot.esm.js',
      '/assets//etc/passwd',
      '/assets/app.js%00.css',
      '/assets/index.html',
      '/assets/',
      '/assets/APP.JS',
    ];
    for (const p of attempts) {
      const res = await rawGet(p);
      assert.equal(res.status, 404, p);
      assert.equal(res.headers['content-type'], 'application/json; charset=utf-8', p);
      assert.match((JSON.parse(res.body) as { error: string }).error, /^no such asset: /, p);
    }
  });

  test('other paths are left to the server (handlePage returns false)', async () => {
    for (const p of ['/api/status', '/metrics', '/index.htm', '/assetsx', '/../assets/app.js']) {
      const res = await rawGet(p);
      assert.equal(res.status, 404, p);
      assert.equal(res.body, '{"error":"not the page"}', p);
    }
  });

  test('methods other than GET and HEAD get a 405 naming the allowed ones', async () => {
    for (const method of ['POST', 'PUT', 'DELETE']) {
      const res = await fetch(`${base}/`, { method });
      assert.equal(res.status, 405, method);
      assert.equal(res.headers.get('allow'), 'GET, HEAD');
      assert.match(((await res.json()) as { error: string }).error, new RegExp(`method ${method} not allowed`));
    }
  });
});
