// Corral's web dashboard. Everything live comes from one stream, GET /ui/api/events (the
// daemon's event feed relayed as server-sent events, read with fetch so the API key can ride
// in a header); actions are POSTs with X-Corral-UI: 1. No polling anywhere.
import uPlot from 'uplot';
import 'uplot/dist/uPlot.min.css';
import './app.css';

const WINDOW_S = 15 * 60;
const MAX_ACTIVITY_ROWS = 500;
const $ = (id) => document.getElementById(id);

// ---- API key (kept per tab) ----
function key() {
  return sessionStorage.getItem('corral-key') || '';
}
function authHeaders(extra = {}) {
  const h = { ...extra };
  if (key()) h.Authorization = 'Bearer ' + key();
  return h;
}
function askForKey(why) {
  $('keyform').hidden = false;
  flash(why || 'an API key is required', true);
}
$('keyform').addEventListener('submit', (e) => {
  e.preventDefault();
  sessionStorage.setItem('corral-key', $('key').value.trim());
  $('keyform').hidden = true;
  flash('');
  restartFeed();
});

function flash(text, error = false) {
  const f = $('flash');
  f.textContent = text;
  f.hidden = !text;
  f.classList.toggle('error', error);
}

async function errorText(res) {
  const t = await res.text();
  try {
    const j = JSON.parse(t);
    if (typeof j.error === 'string') return j.error;
    if (j.error && j.error.message) return j.error.message;
    if (j.message) return j.message;
  } catch (_) {
    /* not JSON */
  }
  return t || res.status + ' ' + res.statusText;
}

async function post(path, body) {
  const res = await fetch(path, {
    method: 'POST',
    headers: authHeaders({ 'X-Corral-UI': '1', 'Content-Type': 'application/json' }),
    body: JSON.stringify(body || {}),
  });
  if (res.status === 401) askForKey(await errorText(res));
  if (!res.ok) throw new Error(await errorText(res));
  return res.json();
}

// ---- state from the feed ----
const state = {
  hello: null,
  catalog: [],
  children: new Map(), // name -> child (as /v1/ps)
  gauges: null,
  gaugeModels: new Map(), // name -> {in_flight, rss_bytes, pinned, ttl_left_s, requests}
  seconds: new Map(), // unix second -> bucket
  modelsSeen: new Set(),
};

function bucket(sec) {
  let b = state.seconds.get(sec);
  if (!b) {
    b = { req: null, err: 0, streams: null, queue: null, budget: null, reserved: null, used: null, toks: {}, ttft: {}, added: [0, 0] };
    state.seconds.set(sec, b);
  }
  return b;
}

function onEvent(ev) {
  switch (ev.t) {
    case 'hello':
      state.hello = ev;
      state.catalog = ev.catalog || [];
      state.children = new Map((ev.models || []).map((m) => [m.name, m]));
      renderModels();
      fillModelPickers();
      break;
    case 'model':
      state.children.set(ev.model.name, ev.model);
      renderModels();
      fillModelPickers();
      break;
    case 'gone':
      state.children.delete(ev.name);
      state.gaugeModels.delete(ev.name);
      renderModels();
      fillModelPickers();
      break;
    case 'request':
      onRequest(ev);
      break;
    case 'gauges':
      onGauges(ev);
      break;
    case 'lagged':
      flash(`the dashboard fell behind: ${ev.dropped} records were not shown`);
      break;
    case 'bench':
      onBenchRun(ev.run || {});
      break;
    default:
      break; // newer daemons: skip
  }
}

function onRequest(r) {
  const b = bucket(Math.floor(r.ts_ms / 1000));
  const m = r.child || r.model || '?';
  state.modelsSeen.add(m);
  if (r.status >= 400) b.err += 1;
  if (r.tok_s >= 0) (b.toks[m] ||= []).push(r.tok_s);
  if (r.ttft_ms >= 0) (b.ttft[m] ||= []).push(r.ttft_ms);
  if (r.proxy_added_us >= 0) {
    b.added[0] += r.proxy_added_us;
    b.added[1] += 1;
  }
  addActivityRow(r);
}

function onGauges(g) {
  state.gauges = g;
  const b = bucket(Math.floor(Date.now() / 1000));
  b.req = g.req_per_s;
  b.streams = g.streams;
  b.queue = g.queue;
  const mem = g.memory || {};
  b.budget = mem.budget_bytes / 2 ** 30;
  b.reserved = mem.reserved_bytes / 2 ** 30;
  b.used = mem.used_bytes / 2 ** 30;
  state.gaugeModels = new Map((g.models || []).map((m) => [m.name, m]));
  // Forget what left the window.
  const oldest = Math.floor(Date.now() / 1000) - WINDOW_S - 5;
  for (const s of state.seconds.keys()) if (s < oldest) state.seconds.delete(s);
  renderModels();
  renderSummary();
  renderCharts();
}

// ---- the feed: SSE over fetch ----
let feedAbort = null;
let feedRetry = null;
function setConn(text, ok) {
  const c = $('conn');
  c.textContent = text;
  c.classList.toggle('off', !ok);
}
async function runFeed() {
  feedAbort = new AbortController();
  let res;
  try {
    res = await fetch('/ui/api/events', { headers: authHeaders({ Accept: 'text/event-stream' }), signal: feedAbort.signal });
  } catch (e) {
    return feedEnded('no connection to the proxy');
  }
  if (res.status === 401 || res.status === 403) {
    setConn('no access', false);
    askForKey(await errorText(res));
    return; // waits for a key
  }
  if (!res.ok) return feedEnded(await errorText(res));
  setConn('live', true);
  try {
    await readSse(res, onEvent);
  } catch (e) {
    if (feedAbort.signal.aborted) return;
  }
  feedEnded('the daemon closed the feed');
}
// Reads a text/event-stream body to its end, calling onData with each event's parsed JSON.
async function readSse(res, onData) {
  const reader = res.body.getReader();
  const decoder = new TextDecoder();
  let buf = '';
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    buf += decoder.decode(value, { stream: true });
    let cut;
    while ((cut = buf.indexOf('\n\n')) >= 0) {
      const block = buf.slice(0, cut);
      buf = buf.slice(cut + 2);
      const data = block
        .split('\n')
        .filter((l) => l.startsWith('data:'))
        .map((l) => l.slice(5).trimStart())
        .join('\n');
      if (!data) continue;
      try {
        onData(JSON.parse(data));
      } catch (e) {
        console.warn('skipped a record:', e.message);
      }
    }
  }
}
function feedEnded(why) {
  setConn('reconnecting… (' + why + ')', false);
  clearTimeout(feedRetry);
  feedRetry = setTimeout(runFeed, 2000); // reconnect, not a poll: only after the stream ended
}
function restartFeed() {
  if (feedAbort) feedAbort.abort();
  clearTimeout(feedRetry);
  runFeed();
}

// ---- formatting ----
const gib = (b) => (b > 0 ? (b / 2 ** 30).toFixed(2) + ' GiB' : b === 0 ? '0' : '–');
const num = (v, d = 0) => (v === undefined || v === null || v < 0 ? '–' : Number(v).toFixed(d));
function el(tag, attrs = {}, ...kids) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === 'class') e.className = v;
    else if (k.startsWith('on')) e.addEventListener(k.slice(2), v);
    else e.setAttribute(k, v);
  }
  for (const k of kids) e.append(k instanceof Node ? k : document.createTextNode(String(k)));
  return e;
}

// ---- Models page ----
function childFor(cat) {
  for (const c of state.children.values()) if (c.model === cat.name || c.name === cat.name) return c;
  return null;
}
// The context a model runs with: its -c/--ctx-size, else (llama-server's default, 0) the
// model's trained context from the catalog. Not running: the context it last ran with, if any.
function contextOf(child, cat) {
  const argv = (child && child.argv) || [];
  for (let i = 0; i + 1 < argv.length; i++) {
    if ((argv[i] === '-c' || argv[i] === '--ctx-size') && Number(argv[i + 1]) > 0) return argv[i + 1];
  }
  const c = cat || (child ? state.catalog.find((m) => m.name === child.model) : null);
  if (child && c && c.context_length > 0) return String(c.context_length);
  return c && c.context > 0 ? String(c.context) : '–';
}
// The speculative decoding a running child uses, from its argv (issue 17; the TUI's
// SpecFromArgv says the same): MTP heads, a draft file with its tokens per step, or –.
function specOf(child) {
  const argv = (child && child.argv) || [];
  let type = '';
  let draft = '';
  let perStep = '';
  for (let i = 0; i + 1 < argv.length; i++) {
    if (argv[i] === '--spec-type') type = argv[i + 1];
    if (argv[i] === '--spec-draft-model' || argv[i] === '-md' || argv[i] === '--model-draft') draft = argv[i + 1];
    if (argv[i] === '--spec-draft-n-max') perStep = argv[i + 1];
  }
  if (type === 'draft-mtp') return 'MTP heads';
  if (draft) return 'draft ' + draft.split('/').pop() + (perStep ? ` (${perStep}/step)` : '');
  return type && type !== 'none' ? type : '–';
}
async function act(name, verb, button) {
  button.disabled = true;
  flash(`${verb} ${name}…`);
  try {
    await post(`/ui/api/models/${encodeURIComponent(name)}/${verb}`);
    flash(`${verb} ${name}: done`);
  } catch (e) {
    flash(`${verb} ${name} refused: ${e.message}`, true);
  } finally {
    button.disabled = false;
  }
}
function actionButton(name, verb, label) {
  const b = el('button', { type: 'button', class: 'act', 'data-model': name, 'data-verb': verb }, label);
  b.addEventListener('click', () => act(name, verb, b));
  return b;
}
let modelsKey = '';
function renderModels() {
  const rows = [];
  const shown = new Set();
  for (const cat of state.catalog) {
    const child = childFor(cat);
    if (child) shown.add(child.name);
    rows.push({ name: cat.name, cat, child });
  }
  for (const child of state.children.values()) if (!shown.has(child.name)) rows.push({ name: child.name, cat: null, child });
  const tbody = $('models-table').tBodies[0];
  const next = [];
  for (const { name, cat, child } of rows) {
    const g = child ? state.gaugeModels.get(child.name) : null;
    const stateText = child ? child.state + (g && g.pinned ? ' · pinned' : '') : cat.state || 'available';
    const est = child ? child.reserved_bytes : cat.memory_bytes;
    const used = g ? g.rss_bytes : child ? child.rss_bytes : -1;
    const actions = el('td', { class: 'actions' });
    if (!child || child.state === 'failed' || child.state === 'stopped') actions.append(actionButton(cat ? cat.name : name, 'load', 'Load'));
    else {
      actions.append(actionButton(child.name, 'unload', 'Unload'));
      actions.append(g && g.pinned ? actionButton(child.name, 'unpin', 'Unpin') : actionButton(child.name, 'pin', 'Pin'));
    }
    const failure = child && child.failure ? el('div', { class: 'err' }, child.failure.message || child.failure.kind) : '';
    next.push(
      el(
        'tr',
        { 'data-model': name, 'data-state': child ? child.state : 'available' },
        el('td', {}, name, cat && cat.quant ? el('span', { class: 'muted' }, ' ' + cat.quant) : ''),
        el('td', { class: 'state' }, stateText, failure),
        el('td', {}, contextOf(child, cat)),
        el('td', { class: 'spec' }, specOf(child)),
        el('td', {}, gib(est)),
        el('td', {}, gib(used)),
        el('td', {}, g ? g.in_flight : '–'),
        el('td', {}, g ? g.requests : '–'),
        el('td', {}, g && g.ttl_left_s >= 0 ? g.ttl_left_s + ' s' : '–'),
        actions,
      ),
    );
  }
  // Rebuild only when something shown changed (keeps focus and clicks stable).
  const k = next.map((r) => r.textContent + r.dataset.state).join('|');
  if (k === modelsKey) return;
  modelsKey = k;
  tbody.replaceChildren(...next);
}
function renderSummary() {
  const h = state.hello;
  const g = state.gauges;
  if (!h) return;
  const mem = (g && g.memory) || h.memory || {};
  $('summary').textContent =
    `daemon ${h.daemon ? h.daemon.version : ''} · budget ${gib(mem.budget_bytes)} · reserved ${gib(mem.reserved_bytes)}` +
    (mem.used_bytes !== undefined ? ` · used ${gib(mem.used_bytes)}` : '') +
    (g ? ` · ${num(g.req_per_s, 1)} req/s · ${g.streams} streams · ${g.queue} queued` : '');
}

// ---- Charts ----
const charts = {};
const palette = ['#2b7bb9', '#d9534f', '#5cb85c', '#f0ad4e', '#8e44ad', '#16a085', '#7f8c8d', '#c0392b'];
function makeChart(id, names, yLabel, sparse) {
  const host = $(id);
  const width = Math.max(300, host.clientWidth || 560);
  const opts = {
    width,
    height: 220,
    scales: { x: { time: true } },
    axes: [{}, { label: yLabel, size: 60 }],
    // Per-request series (sparse: a point per second with requests) are drawn as points.
    series: [{}, ...names.map((n, i) => ({ label: n, stroke: palette[i % palette.length], width: 1.5, spanGaps: false, points: { show: sparse, size: 6, fill: palette[i % palette.length] } }))],
  };
  const data = [[], ...names.map(() => [])];
  const old = charts[id];
  if (old) old.plot.destroy();
  charts[id] = { plot: new uPlot(opts, data, host), names: names.join('\u0000') };
  return charts[id];
}
function chart(id, names, yLabel, data, sparse = false) {
  let c = charts[id];
  if (!c || c.names !== names.join('\u0000')) c = makeChart(id, names, yLabel, sparse);
  c.plot.setData(data);
  let points = 0;
  for (let s = 1; s < data.length; s++) for (const v of data[s]) if (v !== null && v !== undefined) points++;
  $(id).dataset.points = String(points);
}
const mean = (a) => (a && a.length ? a.reduce((x, y) => x + y, 0) / a.length : null);
function renderCharts() {
  if ($('page-charts').hidden) return; // drawn when shown; the data keeps accumulating
  const now = Math.floor(Date.now() / 1000);
  const xs = [];
  for (let s = now - WINDOW_S; s <= now; s++) xs.push(s);
  const bs = xs.map((s) => state.seconds.get(s));
  const col = (f) => bs.map((b) => (b ? f(b) : null));
  const models = [...state.modelsSeen].sort();
  const perModel = (field) => models.map((m) => col((b) => mean(b[field][m])));
  chart('chart-toks', models.length ? models : ['(no requests yet)'], 'tok/s', [xs, ...(models.length ? perModel('toks') : [col(() => null)])], true);
  chart('chart-ttft', models.length ? models : ['(no requests yet)'], 'ms', [xs, ...(models.length ? perModel('ttft') : [col(() => null)])], true);
  chart('chart-reqs', ['requests/s', 'errors/s'], 'per s', [xs, col((b) => b.req), col((b) => (b.req === null && !b.err ? null : b.err))]);
  chart('chart-streams', ['streams', 'queue'], 'count', [xs, col((b) => b.streams), col((b) => b.queue)]);
  chart('chart-mem', ['reserved', 'used (RSS)'], 'GiB', [xs, col((b) => b.reserved), col((b) => b.used)]);
  chart('chart-added', ['proxy-added'], 'µs', [xs, col((b) => (b.added[1] ? b.added[0] / b.added[1] : null))], true);
}

// ---- Activity ----
function addActivityRow(r) {
  const tbody = $('activity-table').tBodies[0];
  const t = new Date(r.ts_ms);
  const row = el(
    'tr',
    { class: r.status >= 400 ? 'bad' : '' },
    el('td', {}, t.toLocaleTimeString()),
    el('td', { class: 'client' }, r.client || '–'),
    el('td', {}, r.route),
    el('td', {}, r.model),
    el('td', {}, r.child || ''),
    el('td', {}, r.status),
    el('td', {}, num(r.ttft_ms, 1)),
    el('td', {}, num(r.tokens)),
    el('td', {}, num(r.tok_s, 1)),
    el('td', {}, num(r.duration_ms, 1)),
    el('td', {}, num(r.proxy_added_us)),
  );
  tbody.prepend(row);
  while (tbody.rows.length > MAX_ACTIVITY_ROWS) tbody.deleteRow(-1);
}

// ---- model pickers (logs, playground) ----
function modelNames() {
  const names = new Set(state.catalog.map((c) => c.name));
  for (const c of state.children.values()) names.add(c.name);
  return [...names].sort();
}
function fillSelect(sel, names) {
  const cur = sel.value;
  const same = sel.options.length === names.length && names.every((n, i) => sel.options[i].value === n);
  if (same) return;
  sel.replaceChildren(...names.map((n) => el('option', { value: n }, n)));
  if (names.includes(cur)) sel.value = cur;
}
function fillModelPickers() {
  const names = modelNames();
  fillSelect($('pg-model'), names);
  fillSelect($('log-model'), names);
  const ready = [...state.children.values()].filter((c) => c.state === 'ready').map((c) => c.name).sort();
  fillSelect($('bench-model'), ready);
  $('bench-start').disabled = benchRunning || !ready.length;
}

// ---- Logs: the tail, then every new line, streamed (SSE over fetch; no polling) ----
const MAX_LOG_LINES = 5000; // kept in the page; the oldest go first
let logLines = [];
let logAbort = null;
let logRenderTimer = null;
function stopLog() {
  if (logAbort) logAbort.abort();
  logAbort = null;
}
async function followLog() {
  stopLog();
  logLines = [];
  renderLog();
  const name = $('log-model').value;
  if (!name) return;
  const ctl = new AbortController();
  logAbort = ctl;
  $('log-state').textContent = 'connecting…';
  $('log-state').dataset.state = 'connecting';
  let res;
  try {
    res = await fetch(`/ui/api/logs/stream?name=${encodeURIComponent(name)}&lines=2000`, { headers: authHeaders({ Accept: 'text/event-stream' }), signal: ctl.signal });
  } catch (e) {
    if (!ctl.signal.aborted) logEnded('no connection to the proxy');
    return;
  }
  if (res.status === 401) askForKey(await errorText(res));
  if (!res.ok) return logEnded(await errorText(res));
  $('log-state').textContent = 'live';
  $('log-state').dataset.state = 'live';
  try {
    await readSse(res, onLogEvent);
  } catch (e) {
    if (ctl.signal.aborted) return;
  }
  if (!ctl.signal.aborted) logEnded('the stream ended (Reconnect to follow again)');
}
function logEnded(why) {
  logAbort = null;
  $('log-state').textContent = why;
  $('log-state').dataset.state = 'ended';
}
function onLogEvent(ev) {
  if (ev.t === 'log') {
    $('log-info').textContent = `${ev.path}${ev.running ? '' : ' (not running)'}`;
    return;
  }
  if (ev.t === 'rotated') logLines.push('--- the log was replaced (the model restarted) ---');
  else if (typeof ev.line === 'string') logLines.push(ev.cut ? ev.line + ' …[line cut]' : ev.line);
  else return;
  if (logLines.length > MAX_LOG_LINES) logLines.splice(0, logLines.length - MAX_LOG_LINES);
  if (!logRenderTimer) logRenderTimer = setTimeout(renderLog, 50); // one redraw per burst
}
function renderLog() {
  clearTimeout(logRenderTimer);
  logRenderTimer = null;
  const q = $('log-search').value.toLowerCase();
  const shown = q ? logLines.filter((l) => l.toLowerCase().includes(q)) : logLines;
  const pre = $('log-text');
  pre.textContent = shown.join('\n');
  pre.dataset.lines = String(logLines.length);
  $('log-info').dataset.matches = String(shown.length);
  if ($('log-follow').checked) pre.scrollTop = pre.scrollHeight;
}
$('log-refresh').addEventListener('click', followLog);
$('log-model').addEventListener('change', followLog);
$('log-search').addEventListener('input', renderLog);

// ---- Bench: `corral bench` reports (listed by the daemon) and quick runs ----
let benchRunning = false;
let benchSelected = '';
const benchPlots = [];
async function getJson(path) {
  const res = await fetch(path, { headers: authHeaders() });
  if (res.status === 401) askForKey(await errorText(res));
  if (!res.ok) throw new Error(await errorText(res));
  return res.json();
}
async function loadBench(select) {
  let j;
  try {
    j = await getJson('/ui/api/bench');
  } catch (e) {
    flash('bench: ' + e.message, true);
    return;
  }
  renderBenchList(j.reports || []);
  onBenchRun(j.run || {}, false);
  const pick = select || benchSelected || (j.reports && j.reports.length ? j.reports[0].id : '');
  if (pick) showReport(pick);
}
function renderBenchList(reports) {
  const rows = reports.map((r) => {
    const tr = el('tr', { 'data-id': r.id, class: r.id === benchSelected ? 'on' : '' }, el('td', {}, r.id), el('td', {}, new Date(r.mtime_s * 1000).toLocaleString()), el('td', {}, (r.bytes / 1024).toFixed(0) + ' KiB'));
    tr.addEventListener('click', () => showReport(r.id));
    return tr;
  });
  $('bench-table').tBodies[0].replaceChildren(...rows);
}
function onBenchRun(run, refresh = true) {
  const s = run.state || 'none';
  benchRunning = s === 'running';
  const box = $('bench-run');
  box.dataset.state = s;
  box.classList.toggle('check-fail', s === 'failed');
  if (s === 'running') box.textContent = `running on ${run.model} (${run.runs} runs per target) since ${new Date(run.started_ms).toLocaleTimeString()}…`;
  else if (s === 'done') box.textContent = `last run: ${run.model} → ${run.id}`;
  else if (s === 'failed' || s === 'cancelled') box.textContent = `last run on ${run.model} ${s}: ${run.error || ''}`;
  else box.textContent = '';
  if (s === 'done') box.dataset.id = run.id;
  fillModelPickers();
  if (refresh && s === 'done' && !$('page-bench').hidden) loadBench(run.id);
}
$('bench-start').addEventListener('click', async () => {
  const model = $('bench-model').value;
  const runs = Math.max(1, Math.min(100, Number($('bench-runs').value) || 10));
  if (!model) return;
  $('bench-start').disabled = true;
  try {
    const j = await post(`/ui/api/models/${encodeURIComponent(model)}/bench?runs=${runs}`);
    onBenchRun(j.run || {}, false);
  } catch (e) {
    flash(`bench ${model} refused: ${e.message}`, true);
    fillModelPickers();
  }
});
const fmt = (v, d = 2) => (typeof v === 'number' ? v.toFixed(d) : '–');
function metricCell(m, d) {
  if (!m || typeof m.median !== 'number') return '–';
  return `${fmt(m.median, d)} (${fmt(m.p10, d)}–${fmt(m.p90, d)})`;
}
function table(head, rows) {
  return el('table', { class: 'grid' }, el('thead', {}, el('tr', {}, ...head.map((h) => el('th', {}, h)))), el('tbody', {}, ...rows.map((r) => el('tr', {}, ...r.map((c) => el('td', {}, c))))));
}
// Per-request points of one metric, a series per target, x = the request's number.
function requestChart(host, title, requests, field, unit) {
  const targets = [...new Set(requests.map((r) => r.target))].sort();
  const per = targets.map((t) => requests.filter((r) => r.target === t && typeof r[field] === 'number').map((r) => r[field]));
  const n = Math.max(0, ...per.map((a) => a.length));
  const xs = Array.from({ length: n }, (_, i) => i + 1);
  const data = [xs, ...per.map((a) => xs.map((_, i) => (i < a.length ? a[i] : null)))];
  const box = el('div', { class: 'chart' }, el('h3', {}, title));
  host.append(box);
  const opts = {
    width: Math.max(300, box.clientWidth - 16 || 480),
    height: 200,
    scales: { x: { time: false } },
    axes: [{ label: 'request' }, { label: unit, size: 60 }],
    series: [{ label: 'request' }, ...targets.map((t, i) => ({ label: t, stroke: palette[i % palette.length], width: 1.5, points: { show: true, size: 5, fill: palette[i % palette.length] } }))],
  };
  benchPlots.push(new uPlot(opts, data, box));
  box.dataset.points = String(per.reduce((s, a) => s + a.length, 0));
}
async function showReport(id) {
  benchSelected = id;
  for (const tr of $('bench-table').tBodies[0].rows) tr.classList.toggle('on', tr.dataset.id === id);
  let r;
  try {
    r = await getJson(`/ui/api/bench/reports/${encodeURIComponent(id)}`);
  } catch (e) {
    $('bench-report').replaceChildren(el('p', { class: 'check-fail' }, `report ${id}: ${e.message}`));
    return;
  }
  if (benchSelected !== id) return; // another one was picked meanwhile
  while (benchPlots.length) benchPlots.pop().destroy();
  const host = $('bench-report');
  const h = r.host || {};
  const p = r.provenance || {};
  host.replaceChildren(
    el('h2', {}, r.id),
    el('div', { class: 'facts' }, `${r.created_utc || ''} · ${h.cpu_model || '?'}, ${h.logical_cores || '?'} cores · corral ${p.corral_version || '?'} (${p.corral_commit || '?'}) · ${(r.build && r.build.description) || ''}`),
  );
  for (const s of r.suites || []) {
    host.append(el('h3', {}, `Suite ${s.suite}: ${s.title || ''} — ${s.status || ''}${s.model ? ' · ' + s.model : ''}`));
    if (s.reason) host.append(el('div', { class: 'muted' }, s.reason));
    const cells = (s.cells || []).map((c) => [c.target, c.workload, c.concurrency, metricCell(c.metrics.ttft_ms, 2), metricCell(c.metrics.decode_tps, 1), metricCell(c.metrics.e2e_ms, 1), c.errors]);
    if (cells.length) host.append(table(['Target', 'Workload', 'Streams', 'TTFT ms median (p10–p90)', 'Decode tok/s', 'E2E ms', 'Errors'], cells));
    const hops = (s.hop_summary || []).map((x) => [`${x.target} vs ${x.baseline}`, x.workload, x.concurrency, fmt(x.added_ttft_p50_ms, 3), fmt(x.added_ttft_p99_ms, 3), x.pairs, x.errors]);
    if (hops.length) host.append(el('h3', {}, 'Proxy hop'), table(['Pair', 'Workload', 'Streams', 'Added TTFT p50 ms', 'p99 ms', 'Pairs', 'Errors'], hops));
    const reqs = s.requests || [];
    if (reqs.length) {
      const charts = el('div', { class: 'charts' });
      host.append(charts);
      requestChart(charts, 'TTFT per request (ms)', reqs, 'ttft_ms', 'ms');
      requestChart(charts, 'Decode tok/s per request', reqs, 'decode_tps', 'tok/s');
    }
    const checks = (s.checks || []).filter((c) => c && typeof c === 'object');
    if (checks.length) host.append(el('h3', {}, 'Checks'), table(Object.keys(checks[0]), checks.map((c) => Object.keys(checks[0]).map((k) => String(c[k])))));
  }
  if (r.markdown) host.append(el('details', {}, el('summary', {}, 'report.md'), el('pre', {}, r.markdown)));
  host.dataset.id = r.id;
}

// ---- Playground ----
const history = [];
function bubble(role, text) {
  const b = el('div', { class: 'msg ' + role }, text);
  $('pg-chat').append(b);
  b.scrollIntoView({ block: 'end' });
  return b;
}
$('pg-clear').addEventListener('click', () => {
  history.length = 0;
  $('pg-chat').replaceChildren();
  $('pg-stats').textContent = '';
});
$('pg-form').addEventListener('submit', async (e) => {
  e.preventDefault();
  const text = $('pg-input').value.trim();
  const model = $('pg-model').value;
  if (!text || !model) return;
  $('pg-input').value = '';
  $('pg-send').disabled = true;
  history.push({ role: 'user', content: text });
  bubble('user', text);
  const out = bubble('assistant', '');
  out.classList.add('streaming');
  const started = performance.now();
  let first = 0;
  let chunks = 0;
  let answer = '';
  let timings = null;
  try {
    const res = await fetch('/v1/chat/completions', {
      method: 'POST',
      headers: authHeaders({ 'Content-Type': 'application/json' }),
      body: JSON.stringify({
        model,
        messages: history,
        stream: true,
        temperature: Number($('pg-temp').value),
        max_tokens: Number($('pg-max').value),
      }),
    });
    if (!res.ok) throw new Error(await errorText(res));
    const reader = res.body.getReader();
    const decoder = new TextDecoder();
    let buf = '';
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      buf += decoder.decode(value, { stream: true });
      let cut;
      while ((cut = buf.indexOf('\n')) >= 0) {
        const line = buf.slice(0, cut).trim();
        buf = buf.slice(cut + 1);
        if (!line.startsWith('data:')) continue;
        const data = line.slice(5).trim();
        if (data === '[DONE]') continue;
        let j;
        try {
          j = JSON.parse(data);
        } catch (_) {
          continue;
        }
        if (j.timings) timings = j.timings;
        const delta = j.choices && j.choices[0] && j.choices[0].delta;
        const piece = delta && (delta.content || delta.reasoning_content);
        if (piece) {
          if (!first) first = performance.now();
          chunks++;
          answer += piece;
          out.textContent = answer;
        }
      }
    }
    history.push({ role: 'assistant', content: answer });
    const total = (performance.now() - started) / 1000;
    const ttft = first ? first - started : NaN;
    const tokS = timings && timings.predicted_per_second ? timings.predicted_per_second : chunks / Math.max(0.001, (performance.now() - (first || started)) / 1000);
    $('pg-stats').textContent = `TTFT ${ttft.toFixed(0)} ms · ${tokS.toFixed(1)} tok/s · ${timings ? timings.predicted_n : chunks} tokens · ${total.toFixed(2)} s`;
    $('pg-stats').dataset.done = '1';
  } catch (err) {
    out.classList.add('err');
    out.textContent = 'error: ' + err.message;
  } finally {
    out.classList.remove('streaming');
    $('pg-send').disabled = false;
  }
});

// ---- pages ----
function showPage() {
  const page = (location.hash || '#models').slice(1);
  if (!$('flash').classList.contains('error')) flash(''); // a done action's note ends with its page
  for (const s of document.querySelectorAll('.page')) s.hidden = s.id !== 'page-' + page;
  for (const a of document.querySelectorAll('#nav a')) a.classList.toggle('on', a.dataset.page === page);
  if (page === 'charts') renderCharts();
  if (page === 'logs' && !logAbort) followLog();
  if (page !== 'logs') stopLog(); // a hidden log costs nothing
  if (page === 'bench') loadBench();
}
window.addEventListener('hashchange', showPage);
showPage();
runFeed();
