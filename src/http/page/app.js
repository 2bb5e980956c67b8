/* tallyd's status page: health from /api/status, this process's figures
 * from /api/history as uPlot charts, refreshed every REFRESH_MS without a
 * reload; a search over /api/names that plots /api/series for a name.
 * Plain browser JavaScript, no build step; uPlot is the global of
 * /assets/uplot/uPlot.iife.min.js. window.tallydPage exposes what is drawn
 * (for the browser test and for a curious operator's console). */
/* global window, document, fetch, URLSearchParams, ResizeObserver, setTimeout, clearTimeout, uPlot */

const REFRESH_MS = 5000;
const SEARCH_LIMIT = 100;

/** The charts, grouped as the page shows them: series name -> label, unit. */
const GROUPS = [
  { title: 'Traffic', series: [
    ['received_per_s', 'received', '/s'],
    ['bad_lines_per_s', 'bad lines', '/s'],
  ] },
  { title: 'Losses', series: [
    ['dropped_per_s', 'dropped at a bound', '/s'],
    ['udp_kernel_drops_per_s', 'UDP datagrams dropped by the kernel', '/s'],
  ] },
  { title: 'Flushing', series: [
    ['flush_time_ms', 'flush time', 'ms'],
    ['timestamp_lag_s', 'lag of the published timestamp', 's'],
    ['leader', 'leader (1 yes, 0 no)', ''],
  ] },
  { title: 'Outbox and backlog', series: [
    ['outbox_bytes', 'outbox', 'bytes'],
    ['outbox_oldest_age_s', 'oldest outbox entry age', 's'],
    ['batches_waiting', 'local batches waiting for Redis', ''],
  ] },
];

const state = { charts: {}, history: null, status: null, series: null, chosen: null, namesKey: null, lastRefreshMs: null, errors: [] };
window.tallydPage = state;

const $ = (id) => document.getElementById(id);

function el(tag, attrs = {}, text) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, v);
  if (text !== undefined) e.textContent = text;
  return e;
}

/** Sets an element's text only when it changes: live regions then announce changes, not every refresh. */
function setText(e, text) {
  if (e.textContent !== text) e.textContent = text;
}

/** A figure for reading: thousands separated, fewer decimals the larger it is. */
function fmt(v) {
  if (v === null || v === undefined) return '–';
  if (typeof v !== 'number') return String(v);
  if (Number.isInteger(v)) return v.toLocaleString('en-US');
  const a = Math.abs(v);
  return v.toLocaleString('en-US', { maximumFractionDigits: a >= 100 ? 0 : a >= 10 ? 1 : 3 });
}

function fmtTime(ms) {
  return new Date(ms).toLocaleTimeString('en-GB', { hour12: false });
}

function fmtDuration(s) {
  if (s < 120) return `${Math.round(s)} s`;
  if (s < 7200) return `${Math.round(s / 60)} min`;
  return `${(s / 3600).toFixed(1)} h`;
}

async function getJson(path) {
  const res = await fetch(path, { headers: { Accept: 'application/json' } });
  let body = null;
  try {
    body = await res.json();
  } catch {
    // a body that is not JSON: said below with the status
  }
  if (!res.ok) throw new Error(`${path}: HTTP ${res.status}${body && body.error ? `: ${body.error}` : ''}`);
  return body;
}

/** One uPlot chart sized to its box, kept sized when the box changes; points shown when few (uPlot's default) or always (opts.points). */
function makeChart(box, label, unit, data, opts = {}) {
  const width = Math.max(200, box.clientWidth);
  const u = new uPlot(
    {
      width,
      height: opts.height ?? 160,
      legend: { show: false },
      cursor: { drag: { x: false, y: false } },
      scales: { x: { time: true } },
      axes: [{ space: 60 }, { size: 56, values: (_u, ticks) => ticks.map(fmt) }],
      series: [{}, { label: unit ? `${label} (${unit})` : label, stroke: '#2f6fdb', width: 1.5, fill: 'rgba(47,111,219,0.08)', points: opts.points ? { show: true } : {}, spanGaps: false }],
    },
    data,
    box,
  );
  new ResizeObserver(() => {
    const w = Math.max(200, box.clientWidth);
    if (w !== u.width) u.setSize({ width: w, height: u.height });
  }).observe(box);
  return u;
}

function buildGroups() {
  const root = $('groups');
  for (const g of GROUPS) {
    const section = el('section', { class: 'group' });
    section.append(el('h3', {}, g.title));
    const grid = el('div', { class: 'grid' });
    for (const [name, label, unit] of g.series) {
      const fig = el('figure', { class: 'chart', 'data-series': name });
      const cap = el('figcaption');
      cap.append(el('span', {}, unit ? `${label} (${unit})` : label));
      const latest = el('output', { class: 'latest', 'data-latest': name, 'aria-label': `${label}, latest` }, '–');
      cap.append(latest);
      const plot = el('div', { class: 'plot', role: 'img', 'aria-label': `${label} over the last hour` });
      fig.append(cap, plot);
      grid.append(fig);
      state.charts[name] = { plot, latest, label, unit, chart: null };
    }
    section.append(grid);
    root.append(section);
  }
}

function drawHistory(h) {
  const t = h.t.map((ms) => ms / 1000);
  for (const [name, c] of Object.entries(state.charts)) {
    const v = h.series[name] ?? t.map(() => null);
    const data = [t, v];
    if (c.chart) c.chart.setData(data);
    else c.chart = makeChart(c.plot, c.label, c.unit, data);
    let last = null;
    for (let i = v.length - 1; i >= 0; i--) {
      if (v[i] !== null) {
        last = v[i];
        break;
      }
    }
    c.latest.textContent = fmt(last);
    c.latest.dataset.value = last === null ? '' : String(last);
  }
}

function fact(dl, term, value) {
  const div = el('div');
  div.append(el('dt', {}, term), el('dd', {}, value));
  dl.append(div);
}

/** Leadership in words: how many of the shards this process leads (leads: it flushes them). */
function shardsText(shards, leader) {
  if (!shards) return leader ? 'leader (flushes)' : 'not the leader';
  if (shards.led.length === 0) return `leads none of ${shards.count} shard${shards.count === 1 ? '' : 's'}`;
  return `leads ${shards.led.length} of ${shards.count} shard${shards.count === 1 ? '' : 's'} (flushes them)`;
}

function drawStatus(s) {
  const h = s.health;
  $('process').textContent = `version ${s.version} · pid ${s.pid} · up ${fmtDuration(s.uptimeS)} · ${shardsText(h.shards, s.leader)}`;
  const badge = $('health-status');
  setText(badge, h.status);
  badge.dataset.status = h.status;
  const reasons = $('health-reasons');
  if (reasons.dataset.key !== h.reasons.join('\n')) {
    reasons.dataset.key = h.reasons.join('\n');
    reasons.replaceChildren(...h.reasons.map((r) => el('li', {}, r)));
  }
  const dl = $('health-facts');
  dl.replaceChildren();
  fact(dl, 'Redis', h.redis.answers ? `answers (${fmt(h.redis.pingMs)} ms)` : `does not answer${h.redis.error ? `: ${h.redis.error}` : ''}`);
  fact(dl, 'shards', `${fmt(h.shards.count)}; this process leads ${h.shards.led.length === 0 ? 'none' : `${h.shards.led.length}: ${h.shards.led.join(', ')}`}`);
  fact(dl, h.shards.count > 1 && h.lastCommit.shard !== null ? `last committed period (shard ${h.lastCommit.shard}, the oldest)` : 'last committed period', h.lastCommit.boundaryMs === null ? 'none yet' : `${fmtTime(h.lastCommit.boundaryMs)} (${fmtDuration(h.lastCommit.ageMs / 1000)} ago)`);
  fact(dl, 'flush interval', fmtDuration(h.flushIntervalMs / 1000));
  fact(dl, 'outbox', h.outbox === null ? 'unknown' : `${fmt(h.outbox.entries)} entries, ${fmt(h.outbox.bytes)} bytes`);
  fact(dl, 'oldest outbox entry', h.outbox === null || h.outbox.oldestAgeMs === null ? '–' : `${fmtDuration(h.outbox.oldestAgeMs / 1000)} old`);
  fact(dl, 'batches waiting', fmt(h.batchesWaiting));
  for (const [k, v] of Object.entries(h.losses)) fact(dl, k.replaceAll('_', ' '), fmt(v));
}

function showError(where, err) {
  const msg = `${where}: ${err instanceof Error ? err.message : String(err)}`;
  state.errors.push(msg);
  if (state.errors.length > 50) state.errors.shift();
  return msg;
}

async function refresh() {
  const info = $('refresh');
  try {
    const [status, history] = await Promise.all([getJson('/api/status'), getJson('/api/history')]);
    state.status = status;
    state.history = history;
    drawStatus(status);
    drawHistory(history);
    await search($('search').value);
    if (state.chosen) await plotSeries(state.chosen);
    state.lastRefreshMs = Date.now();
    info.classList.remove('error');
    info.textContent = `updated ${fmtTime(state.lastRefreshMs)}, every ${REFRESH_MS / 1000} s; one point per ${fmtDuration(history.stepMs / 1000)}`;
  } catch (err) {
    const badge = $('health-status');
    setText(badge, 'unknown');
    badge.dataset.status = 'unknown';
    $('health-reasons').replaceChildren(); // the last answer's reasons are no longer known either
    $('health-reasons').dataset.key = '';
    info.classList.add('error');
    info.textContent = `tallyd does not answer (${showError('refresh', err)}); trying again in ${REFRESH_MS / 1000} s`;
  }
}

function nameItem(name) {
  const li = el('li');
  const b = el('button', { type: 'button', 'aria-pressed': String(name === state.chosen), 'data-name': name }, name);
  b.addEventListener('click', () => choose(name));
  li.append(b);
  return li;
}

async function search(q) {
  const info = $('search-info');
  const list = $('names');
  try {
    const r = await getJson(`/api/names?${new URLSearchParams({ q, limit: String(SEARCH_LIMIT) })}`);
    if ($('search').value !== q) return; // a newer search is under way
    const key = r.names.join('\n');
    if (state.namesKey !== key) {
      // only when the names changed: the same buttons keep the keyboard focus
      state.namesKey = key;
      list.replaceChildren(...r.names.map(nameItem));
    }
    const period = r.boundaryMs === null ? 'no period committed yet' : `period of ${fmtTime(r.boundaryMs)}`;
    setText(info, `${r.names.length}${r.truncated ? '+ (refine the search for more)' : ''} name${r.names.length === 1 ? '' : 's'} containing “${q}” in the ${period}`);
  } catch (err) {
    setText(info, showError('search', err));
  }
}

async function choose(name) {
  state.chosen = name;
  for (const b of $('names').querySelectorAll('button')) b.setAttribute('aria-pressed', String(b.dataset.name === name));
  await plotSeries(name);
}

async function plotSeries(name) {
  const box = $('series');
  box.hidden = false;
  $('series-title').textContent = name;
  const bound = $('series-bound');
  let s;
  try {
    s = await getJson(`/api/series?${new URLSearchParams({ name })}`);
  } catch (err) {
    bound.textContent = showError('series', err);
    return;
  }
  if (state.chosen !== name) return;
  state.series = s;
  const known = s.v.filter((v) => v !== null).length;
  if (s.t.length === 0) {
    bound.textContent = 'tallyd keeps no recent values of this name (it may be older than what Redis retains): look it up in Graphite.';
  } else {
    const first = s.t[0];
    const last = s.t[s.t.length - 1];
    bound.textContent = `${known} value${known === 1 ? '' : 's'} over ${s.t.length} period${s.t.length === 1 ? '' : 's'}, from ${fmtTime(first * 1000)} to ${fmtTime(last * 1000)} (${fmtDuration(last - first)}): how far back tallyd keeps recent periods in Redis. Older values are in Graphite only.`;
  }
  const data = [s.t, s.v];
  const figure = $('series-chart');
  if (state.seriesChart && state.seriesChartName === name) state.seriesChart.setData(data);
  else {
    if (state.seriesChart) state.seriesChart.destroy();
    figure.replaceChildren();
    const plot = el('div', { class: 'plot', role: 'img', 'aria-label': `${name} per period` });
    figure.append(plot);
    state.seriesChart = makeChart(plot, name, '', data, { height: 220, points: true });
    state.seriesChartName = name;
  }
  const rows = s.t.map((ts, i) => {
    const tr = el('tr');
    tr.append(el('td', {}, fmtTime(ts * 1000)), el('td', { 'data-ts': String(ts) }, s.v[i] === null ? '–' : String(s.v[i]))); // exact, as stored
    return tr;
  });
  $('series-table').tBodies[0].replaceChildren(...rows.reverse());
}

function wireSearch() {
  const input = $('search');
  let timer = null;
  input.addEventListener('input', () => {
    clearTimeout(timer);
    timer = setTimeout(() => search(input.value), 250);
  });
  $('search-form').addEventListener('submit', (e) => {
    e.preventDefault();
    clearTimeout(timer);
    search(input.value);
  });
}

/** Refreshes every REFRESH_MS after the previous refresh ended: a slow answer never piles requests up. */
async function loop() {
  await refresh();
  setTimeout(loop, REFRESH_MS);
}

buildGroups();
wireSearch();
search('');
loop();
