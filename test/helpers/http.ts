/** A real HTTP client for tests (Node's fetch), with the body read as text. */
export interface HttpAnswer {
  status: number;
  contentType: string;
  body: string;
}

export async function httpGet(port: number, path: string, method = 'GET'): Promise<HttpAnswer> {
  const res = await fetch(`http://127.0.0.1:${port}${path}`, { method, signal: AbortSignal.timeout(10_000) });
  return { status: res.status, contentType: res.headers.get('content-type') ?? '', body: await res.text() };
}

/** GET a JSON endpoint; fails the test with the body when the status is not 200. */
export async function getJson<T>(port: number, path: string): Promise<T> {
  const a = await httpGet(port, path);
  if (a.status !== 200) throw new Error(`GET ${path}: ${a.status} ${a.body}`);
  return JSON.parse(a.body) as T;
}

/** Poll until pred holds for a GET's answer; returns that answer. */
export async function waitForAnswer(port: number, path: string, pred: (a: HttpAnswer) => boolean, what: string, timeoutMs = 15_000): Promise<HttpAnswer> {
  const deadline = Date.now() + timeoutMs;
  let last: HttpAnswer | null = null;
  while (Date.now() < deadline) {
    last = await httpGet(port, path).catch((err: unknown) => ({ status: 0, contentType: '', body: String(err) }));
    if (pred(last)) return last;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`timed out waiting for ${what} at ${path}; last answer ${JSON.stringify(last)}`);
}
