// Drives the web dashboard in headless Chromium (Debian's, through puppeteer-core; nothing is
// downloaded) against a real daemon that tests/web/web_dashboard_test.cc started.
//   node dashboard.mjs full|refusal
// Environment: CORRAL_UI_URL (http://127.0.0.1:PORT/ui/), CORRAL_PROXY_PORT, CORRAL_MODEL
// (a catalog name), CORRAL_SHOTS (screenshot folder), CORRAL_WEB_NPM (node_modules' parent),
// CORRAL_CHROMIUM (the browser), CORRAL_BENCH_REPORT (a report id the daemon lists). Exits 0
// when every check passed; prints what failed.
import { appendFileSync, mkdirSync } from 'node:fs';

import { launchBrowser } from './browser.mjs';

const mode = process.argv[2] || 'full';
const url = process.env.CORRAL_UI_URL;
const port = process.env.CORRAL_PROXY_PORT;
const model = process.env.CORRAL_MODEL;
const shots = process.env.CORRAL_SHOTS;
const benchReport = process.env.CORRAL_BENCH_REPORT || '';
mkdirSync(shots, { recursive: true });

const consoleErrors = [];
const step = (s) => console.log(`[web test] ${s}`);

const browser = await launchBrowser();
let failed = false;
try {
  const page = await browser.newPage();
  page.setDefaultTimeout(60000);
  page.on('console', (m) => {
    // Chromium logs every non-2xx fetch; the refusal's own 507 is the expected answer.
    if (m.type() === 'error' && !(mode === 'refusal' && /status of 507/.test(m.text()))) consoleErrors.push(m.text());
  });
  page.on('pageerror', (e) => consoleErrors.push('page error: ' + e.message));

  const row = `tr[data-model="${model}"]`;
  const shot = (name) => page.screenshot({ path: `${shots}/${name}.png`, fullPage: true });
  const chat = (n) =>
    Promise.all(
      Array.from({ length: n }, () =>
        fetch(`http://127.0.0.1:${port}/v1/chat/completions`, {
          method: 'POST',
          headers: { 'Content-Type': 'application/json' },
          body: JSON.stringify({ model, max_tokens: 8, temperature: 0, messages: [{ role: 'user', content: 'hello' }] }),
        }).then((r) => r.text()),
      ),
    );

  step('open ' + url);
  const res = await page.goto(url, { waitUntil: 'load' });
  const csp = res.headers()['content-security-policy'] || '';
  if (!csp.includes("script-src 'self'")) throw new Error('no strict CSP on the page: ' + csp);
  await page.waitForFunction(() => document.getElementById('conn').textContent === 'live');
  await page.waitForSelector(row);

  if (mode === 'refusal') {
    step('load with a too-small budget');
    await page.click(`${row} button[data-verb="load"]`);
    await page.waitForFunction(() => {
      const f = document.getElementById('flash');
      return f.classList.contains('error') && /refused/.test(f.textContent);
    });
    const text = await page.$eval('#flash', (e) => e.textContent);
    step('shown: ' + text);
    if (!/budget|memory/i.test(text)) throw new Error('the refusal does not say why: ' + text);
    await shot('refusal');
  } else {
    await shot('models-idle');
    step('load ' + model);
    await page.click(`${row} button[data-verb="load"]`);
    await page.waitForSelector(`${row}[data-state="ready"] button[data-verb="unload"]`, { timeout: 90000 });
    step('loaded by hand: pinned; unpin, then pin again');
    await page.waitForSelector(`${row} button[data-verb="unpin"]`);
    await page.click(`${row} button[data-verb="unpin"]`);
    await page.waitForSelector(`${row} button[data-verb="pin"]`);
    await page.click(`${row} button[data-verb="pin"]`);
    await page.waitForSelector(`${row} button[data-verb="unpin"]`);

    step('charts move after requests');
    await page.evaluate(() => (location.hash = '#charts'));
    await page.waitForSelector('#chart-reqs[data-points]');
    const points = () =>
      page.evaluate(() => ({
        toks: Number(document.getElementById('chart-toks').dataset.points || 0),
        ttft: Number(document.getElementById('chart-ttft').dataset.points || 0),
      }));
    const before = await points();
    await chat(4);
    await page.waitForFunction(
      (b) => Number(document.getElementById('chart-toks').dataset.points || 0) > b.toks &&
        Number(document.getElementById('chart-ttft').dataset.points || 0) > b.ttft,
      { timeout: 30000 },
      before,
    );
    await chat(4);
    await new Promise((r) => setTimeout(r, 2500)); // two more gauge ticks on the charts
    await shot('charts');

    step('activity rows');
    await page.evaluate(() => (location.hash = '#activity'));
    await page.waitForFunction(() =>
      [...document.querySelectorAll('#activity-table tbody tr')].some((r) => r.textContent.includes('/v1/chat/completions')),
    );
    const client = await page.$eval('#activity-table tbody tr td.client', (e) => e.textContent);
    step('activity client column: ' + client);
    if (client !== '127.0.0.1') throw new Error('the activity row does not show the client address: ' + client);
    await shot('activity');

    step('playground streams an answer');
    await page.evaluate(() => (location.hash = '#playground'));
    await page.select('#pg-model', model);
    await page.$eval('#pg-max', (e) => (e.value = '24'));
    await page.type('#pg-input', 'Tell me about llamas.');
    await page.click('#pg-send');
    await page.waitForFunction(() => document.getElementById('pg-stats').dataset.done === '1', { timeout: 60000 });
    const answer = await page.$eval('#pg-chat .msg.assistant', (e) => e.textContent);
    const stats = await page.$eval('#pg-stats', (e) => e.textContent);
    step(`answer (${answer.length} chars), ${stats}`);
    if (!answer || answer.startsWith('error')) throw new Error('no streamed answer: ' + answer);
    if (!/TTFT \d+ ms/.test(stats) || !/tok\/s/.test(stats)) throw new Error('no TTFT/tok/s: ' + stats);
    await shot('playground');

    step('logs stream live and search filters');
    await page.evaluate(() => (location.hash = '#logs'));
    const child = await page.$eval(`${row} button[data-verb="unload"]`, (b) => b.dataset.model);
    await page.select('#log-model', child);
    await page.waitForFunction(() => document.getElementById('log-state').dataset.state === 'live');
    await page.waitForFunction(() => document.getElementById('log-text').textContent.length > 100);
    const logPath = (await page.$eval('#log-info', (e) => e.textContent)).replace(/ \(not running\)$/, '');
    const marker = `corral-web-test live line ${Date.now()}`;
    appendFileSync(logPath, marker + '\n'); // as llama-server would write it
    await page.waitForFunction((m) => document.getElementById('log-text').textContent.includes(m), { timeout: 20000 }, marker);
    step('a new log line arrived without a reload');
    await page.type('#log-search', 'corral-web-test');
    await page.waitForFunction(() => document.getElementById('log-info').dataset.matches === '1');
    const filtered = await page.$eval('#log-text', (e) => e.textContent);
    if (filtered !== marker) throw new Error('search did not filter to the one line: ' + filtered.slice(0, 200));
    await page.$eval('#log-search', (e) => (e.value = ''));
    await page.type('#log-search', 'server');
    await page.waitForFunction(() => Number(document.getElementById('log-info').dataset.matches || 0) > 0);
    await shot('logs');

    step('bench: a committed report with its charts');
    await page.evaluate(() => (location.hash = '#bench'));
    await page.waitForSelector(`#bench-table tr[data-id="${benchReport}"]`);
    await page.click(`#bench-table tr[data-id="${benchReport}"]`);
    await page.waitForFunction((id) => document.getElementById('bench-report').dataset.id === id, {}, benchReport);
    await page.waitForFunction(() => [...document.querySelectorAll('#bench-report .chart')].some((c) => Number(c.dataset.points || 0) > 0));
    await shot('bench-report');
    step('bench: a run started from the page');
    await page.waitForFunction((c) => [...document.getElementById('bench-model').options].some((o) => o.value === c), {}, child);
    await page.select('#bench-model', child);
    await page.$eval('#bench-runs', (e) => (e.value = '3'));
    await page.click('#bench-start');
    await page.waitForFunction(() => ['running', 'done'].includes(document.getElementById('bench-run').dataset.state));
    await shot('bench-running');
    await page.waitForFunction(() => ['done', 'failed'].includes(document.getElementById('bench-run').dataset.state), { timeout: 150000 });
    const run = await page.$eval('#bench-run', (e) => ({ state: e.dataset.state, id: e.dataset.id, text: e.textContent }));
    step(`bench run: ${run.state} ${run.text}`);
    if (run.state !== 'done') throw new Error('the bench run failed: ' + run.text);
    await page.waitForFunction((id) => document.getElementById('bench-report').dataset.id === id, { timeout: 30000 }, run.id);
    await page.waitForSelector(`#bench-table tr[data-id="${run.id}"]`);
    await page.waitForFunction(() => [...document.querySelectorAll('#bench-report .chart')].some((c) => Number(c.dataset.points || 0) > 0));
    await shot('bench');

    step('unload');
    await page.evaluate(() => (location.hash = '#models'));
    await shot('models-running');
    await page.click(`${row} button[data-verb="unload"]`);
    await page.waitForSelector(`${row} button[data-verb="load"]`, { timeout: 60000 });
    await shot('models-unloaded');
  }
  if (consoleErrors.length) throw new Error('console errors:\n  ' + consoleErrors.join('\n  '));
  step('all checks passed');
} catch (e) {
  failed = true;
  console.error('[web test] FAILED: ' + e.message);
  if (consoleErrors.length) console.error('console errors:\n  ' + consoleErrors.join('\n  '));
  try {
    const pages = await browser.pages();
    if (pages.length) await pages[pages.length - 1].screenshot({ path: `${shots}/failure-${mode}.png`, fullPage: true });
  } catch (_) {
    /* best effort */
  }
} finally {
  await browser.close();
}
process.exit(failed ? 1 : 0);
