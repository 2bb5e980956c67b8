/**
 * The status page in a real browser: a tallyd child process (real Redis, no
 * Carbon: graphiteHost unset, HTTP on port 0, flushInterval 1 s) gets statsd
 * traffic over UDP; headless Chromium (Debian's chromium via playwright-core)
 * loads the page, the uPlot charts render and are drawn, a screenshot is kept
 * at tmp/artifacts/status-page.png, a search finds the counter sent and its
 * plot shows tallyd's values per period, and live values change both without
 * a reload (the page refreshes itself) and between two loads.
 *
 * Skipped only when chromium is missing and CI is unset; under CI a missing
 * chromium fails the run, as carbon.test.ts does for carbon-cache.
 */
import assert from 'node:assert/strict';
import { mkdirSync } from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import type { Page } from 'playwright-core';
import { chromiumMissing, openBrowser, type TestBrowser } from '../helpers/browser.js';
import { freeUdpPort, sendUdp } from '../helpers/carbon.js';
import { getJson } from '../helpers/http.js';
import { cleanup, testPrefix } from '../helpers/redis.js';
import { ROOT, spawnTallyd, testConfig, waitForHttpPort, type ChildTallyd } from '../helpers/tallyd.js';

const missing = chromiumMissing();
const skip = missing !== null && !process.env.CI ? `${missing}; set CI=1 to make this a failure` : false;

const SCREENSHOT = path.join(ROOT, 'tmp', 'artifacts', 'status-page.png');
const FLUSH_MS = 1000;
const WAIT_MS = 45_000;
const COUNTER = 'page.e2e.hits';
const COUNT_NAME = `stats_counts.${COUNTER}`;
/** The history series the page draws, as /api/history names them. */
const HISTORY_SERIES = [
  'received_per_s',
  'bad_lines_per_s',
  'dropped_per_s',
  'udp_kernel_drops_per_s',
  'flush_time_ms',
  'timestamp_lag_s',
  'outbox_bytes',
  'outbox_oldest_age_s',
  'batches_waiting',
  'leader',
];

/**
 * The browser globals the in-page functions below use, typed as far as they
 * use them: they run in Chromium, and the project's TypeScript lib has no DOM.
 */
interface PageEl {
  getAttribute(name: string): string | null;
  querySelector(selector: string): PageEl | null;
  getBoundingClientRect(): { width: number; height: number };
  readonly dataset: Record<string, string | undefined>;
  readonly textContent: string | null;
  readonly width: number;
  readonly height: number;
  readonly scrollWidth: number;
  getContext(kind: '2d'): { getImageData(x: number, y: number, w: number, h: number): { data: ArrayLike<number> } } | null;
}
interface PageChart {
  readonly width: number;
  readonly height: number;
  readonly data: [number[], Array<number | null>];
  readonly root: PageEl;
}
/** window.tallydPage, what app.js exposes. */
interface PageState {
  charts: Record<string, { chart: PageChart | null; latest: PageEl }>;
  history: unknown;
  seriesChart?: PageChart;
  seriesChartName?: string;
}
declare const window: { tallydPage?: PageState };
declare const document: { querySelector(selector: string): PageEl | null; querySelectorAll(selector: string): Iterable<PageEl> };

interface SeriesAnswer {
  name: string;
  t: number[];
  v: Array<number | null>;
}

/** What the page drew: each history chart's size and data, the chosen series' chart data. */
interface Drawn {
  charts: Record<string, { width: number; height: number; points: number; latest: string; strokePixels: number }>;
  series: { name: string; t: number[]; v: Array<number | null> } | null;
}

/** Counts the canvas pixels of the page's stroke colour (#2f6fdb): > 0 once a line or point is drawn. */
function drawn(page: Page): Promise<Drawn> {
  return page.evaluate(() => {
    const p = window.tallydPage!;
    const stroke = (root: PageEl): number => {
      const canvas = root.querySelector('canvas');
      if (!canvas || canvas.width === 0 || canvas.height === 0) return 0;
      const px = canvas.getContext('2d')!.getImageData(0, 0, canvas.width, canvas.height).data;
      let n = 0;
      for (let i = 0; i < px.length; i += 4) if (Math.abs(px[i]! - 0x2f) < 24 && Math.abs(px[i + 1]! - 0x6f) < 24 && Math.abs(px[i + 2]! - 0xdb) < 24 && px[i + 3]! > 200) n++;
      return n;
    };
    const charts: Drawn['charts'] = {};
    for (const [name, c] of Object.entries(p.charts)) {
      const canvas = c.chart?.root.querySelector('canvas');
      charts[name] = {
        width: canvas?.getBoundingClientRect().width ?? 0,
        height: canvas?.getBoundingClientRect().height ?? 0,
        points: c.chart ? c.chart.data[0]!.length : 0,
        latest: c.latest.dataset.value ?? '',
        strokePixels: c.chart ? stroke(c.chart.root) : 0,
      };
    }
    const s = p.seriesChart;
    return { charts, series: s ? { name: p.seriesChartName ?? '', t: [...s.data[0]], v: [...s.data[1]] } : null };
  });
}

async function latestReceived(page: Page): Promise<number> {
  const v = await page.locator('output[data-latest="received_per_s"]').getAttribute('data-value');
  return v ? Number(v) : 0;
}

/** Sends n one-line counter datagrams. */
function hits(port: number, n: number): Promise<void> {
  return sendUdp(port, Array.from({ length: n }, () => `${COUNTER}:1|c`));
}

const sum = (v: ReadonlyArray<number | null>): number => v.reduce<number>((a, x) => a + (x ?? 0), 0);

describe('status page in Chromium', { skip, timeout: 180_000 }, () => {
  const prefix = testPrefix('status-page');
  let child: ChildTallyd;
  let browser: TestBrowser;
  let httpPort = 0;
  let udpPort = 0;
  let base = '';
  let background: NodeJS.Timeout | null = null;

  before(async () => {
    if (missing !== null) throw new Error(`${missing} (CI is set, so this fails rather than skips)`);
    udpPort = await freeUdpPort();
    child = spawnTallyd(
      testConfig(prefix, null, {
        servers: [{ server: 'udp', address: '127.0.0.1', port: udpPort }],
        flushInterval: FLUSH_MS,
        http: { port: 0, address: '127.0.0.1' },
        log: { level: 'info' },
      }),
    );
    httpPort = await waitForHttpPort(child);
    base = `http://127.0.0.1:${httpPort}`;
    browser = await openBrowser();
  });

  after(async () => {
    if (background) clearInterval(background);
    await browser?.close();
    if (child && child.proc.exitCode === null) {
      child.proc.kill('SIGTERM');
      await child.exited;
    }
    await cleanup(prefix);
  });

  test('the page renders its graphs, finds a metric and plots its values per period, and its live values change', async (t) => {
    // First load, before any traffic: every history chart is there, sized, with the first sample.
    const first = await browser.newPage();
    await first.goto(base + '/');
    await first.waitForFunction(
      (names) => {
        const p = window.tallydPage;
        return names.every((n) => (p?.charts[n]?.chart?.data[0]?.length ?? 0) > 0);
      },
      HISTORY_SERIES,
      { timeout: WAIT_MS },
    );
    const d1 = await drawn(first);
    assert.deepEqual(Object.keys(d1.charts).sort(), [...HISTORY_SERIES].sort());
    for (const [name, c] of Object.entries(d1.charts)) {
      assert.ok(c.width > 100 && c.height > 50, `${name}: canvas ${c.width}x${c.height}`);
    }
    await first.locator('#health-status').filter({ hasText: /^(up|down)$/ }).waitFor({ timeout: WAIT_MS });
    const receivedBefore = await latestReceived(first);

    // Traffic: a background counter keeps received_per_s above zero; two bursts of the searched counter,
    // the second sent once the first is seen committed, so its periods come strictly after the first's.
    background = setInterval(() => void sendUdp(udpPort, ['page.e2e.background:1|c']).catch(() => undefined), 50);
    await hits(udpPort, 20);

    // Search: the counter's names appear (the list follows the last committed period), choose the count.
    await first.fill('#search', 'page.e2e.h');
    const button = first.locator(`#names button[data-name="${COUNT_NAME}"]`);
    await button.waitFor({ timeout: WAIT_MS });
    assert.ok(await first.locator(`#names button[data-name="stats.${COUNTER}"]`).count(), 'the rate name is listed too');
    await button.click();
    await first.waitForFunction(
      ([name, n]) => {
        const p = window.tallydPage;
        return p?.seriesChartName === name && (p.seriesChart?.data[1] ?? []).reduce<number>((a, x) => a + (x ?? 0), 0) === n;
      },
      [COUNT_NAME, 20] as const,
      { timeout: WAIT_MS },
    );
    await hits(udpPort, 30);
    await first.waitForFunction(
      (n) => {
        const p = window.tallydPage;
        return (p?.seriesChart?.data[1] ?? []).reduce<number>((a, x) => a + (x ?? 0), 0) === n;
      },
      50,
      { timeout: WAIT_MS },
    );

    // The plot shows tallyd's values per period: the API's, point for point, and exactly what was sent:
    // counts that add up to 20 in periods before all those holding the next 30.
    const shown = (await drawn(first)).series!;
    const api = await getJson<SeriesAnswer>(httpPort, `/api/series?name=${encodeURIComponent(COUNT_NAME)}`);
    const apiAt = new Map(api.t.map((ts, i) => [ts, api.v[i]]));
    for (let i = 0; i < shown.t.length; i++) {
      if (!apiAt.has(shown.t[i]!)) continue;
      // The newest periods may have been committed by another shard only when the plot was drawn (the name's own
      // shard commits a period on its own): null then, the name's value by the time the API is asked.
      if (shown.v[i] === null && i >= shown.v.length - 2) continue;
      assert.equal(shown.v[i], apiAt.get(shown.t[i]!), `value at ${shown.t[i]}`);
    }
    assert.ok(shown.t.every((ts, i) => i === 0 || ts > shown.t[i - 1]!), 'periods in order');
    assert.ok(shown.t.every((ts) => ts % (FLUSH_MS / 1000) === 0), 'period timestamps are boundaries');
    assert.ok(shown.v.every((v) => v === null || (Number.isInteger(v) && v >= 0)), `counts: ${JSON.stringify(shown.v)}`);
    assert.equal(sum(shown.v), 50);
    const split = shown.v.findIndex((_, i) => sum(shown.v.slice(0, i + 1)) === 20);
    assert.ok(split >= 0 && sum(shown.v.slice(split + 1)) === 30, `20 then 30 in later periods: ${JSON.stringify(shown)}`);
    // The table under the plot says the same, and the page says how far back values go.
    // Chart and table read in one go (the page may refresh between two reads): a row per plotted period, same values.
    const both = await first.evaluate(() => {
      const chart = window.tallydPage!.seriesChart!;
      const rows = [...document.querySelectorAll('#series-table td[data-ts]')].map((td) => [Number(td.getAttribute('data-ts')), td.textContent ?? ''] as const);
      return { t: [...chart.data[0]], v: [...chart.data[1]], rows };
    });
    assert.deepEqual(
      [...both.rows].sort((x, y) => x[0] - y[0]),
      both.t.map((ts, i) => [ts, both.v[i] === null ? '–' : String(both.v[i])]),
    );
    assert.match((await first.locator('#series-bound').textContent()) ?? '', /^\d+ values? over \d+ periods?, from .+ to .+: how far back tallyd keeps recent periods in Redis/);

    // Live without a reload: the page refreshes itself, and received_per_s rises above its first figure.
    await first.waitForFunction(
      (before) => Number(document.querySelector('output[data-latest="received_per_s"]')?.getAttribute('data-value') || 0) > before,
      receivedBefore,
      { timeout: WAIT_MS },
    );
    const d2 = await drawn(first);
    assert.ok(d2.charts.received_per_s!.points >= 2, 'received_per_s has at least two samples');
    assert.ok(d2.charts.received_per_s!.strokePixels > 0, 'the received_per_s line is drawn');
    assert.ok((await drawn(first)).series !== null);

    // And between two loads: a second tab loaded now shows the larger figure from the start.
    const second = await browser.newPage();
    await second.goto(base + '/');
    await second.waitForFunction(
      () => Boolean(window.tallydPage?.history) && (document.querySelector('output[data-latest="received_per_s"]')?.getAttribute('data-value') ?? null) !== null,
      null,
      { timeout: WAIT_MS },
    );
    const receivedAfter = await latestReceived(second);
    assert.ok(receivedAfter > receivedBefore, `received_per_s: ${receivedBefore} at the first load, ${receivedAfter} at the second`);
    // At a phone's width nothing runs off the side: the charts shrink to the column.
    await second.setViewportSize({ width: 360, height: 800 });
    await second.waitForFunction(
      () => (document.querySelector('figure[data-series="received_per_s"] canvas')?.getBoundingClientRect().width ?? 999) < 360,
      null,
      { timeout: WAIT_MS },
    );
    assert.equal(await second.evaluate(() => document.querySelector('html')?.scrollWidth), 360, 'no horizontal scrolling');
    const narrow = await drawn(second);
    for (const [name, c] of Object.entries(narrow.charts)) assert.ok(c.width > 100 && c.width < 360, `${name} at 360 px: ${c.width} px wide`);
    await second.close();

    mkdirSync(path.dirname(SCREENSHOT), { recursive: true });
    await first.screenshot({ path: SCREENSHOT, fullPage: true });
    t.diagnostic(`screenshot: ${SCREENSHOT}`);
    console.log(`status page screenshot: ${SCREENSHOT}`);
    assert.deepEqual(browser.problems, [], 'no console errors, page errors or failed requests');

    // tallyd gone: the open page says so instead of showing stale figures as current.
    child.proc.kill('SIGTERM');
    await child.exited;
    await first.locator('#health-status[data-status="unknown"]').waitFor({ timeout: WAIT_MS });
    assert.match((await first.locator('#refresh').textContent()) ?? '', /^tallyd does not answer \(refresh: /);
  });
});
