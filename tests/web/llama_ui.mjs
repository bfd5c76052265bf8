// Drives the stock llama.cpp web UI (the pinned engine's tools/ui, served by Corral under
// /llama/) in headless Chromium (Debian's, through puppeteer-core; nothing is downloaded)
// against a real daemon that tests/web/llama_ui_test.cc started.
//   node llama_ui.mjs
// Environment: CORRAL_LLAMA_UI_URL (http://127.0.0.1:PORT/llama/), CORRAL_PROXY_PORT,
// CORRAL_MODEL and CORRAL_OTHER_MODEL (catalog names), CORRAL_SHOTS (screenshot folder),
// CORRAL_WEB_NPM (node_modules' parent), CORRAL_CHROMIUM (the browser). Exits 0 when every
// check passed; prints what failed, and the requests the UI made.
import { mkdirSync, writeFileSync } from 'node:fs';

import { launchBrowser } from './browser.mjs';

const url = process.env.CORRAL_LLAMA_UI_URL;
const port = process.env.CORRAL_PROXY_PORT;
const model = process.env.CORRAL_MODEL;
const other = process.env.CORRAL_OTHER_MODEL;
// The picker shows a name's first part, its size and quantization as badges ("alpha 4M f16").
const shown = (name) => name.split('-')[0];
const shots = process.env.CORRAL_SHOTS;
mkdirSync(shots, { recursive: true });

const consoleErrors = [];
const requests = []; // "METHOD /path?query" of every request the page made to Corral
const step = (s) => console.log(`[llama-ui test] ${s}`);

const browser = await launchBrowser();
let failed = false;
try {
  const page = await browser.newPage();
  page.setDefaultTimeout(60000);
  page.on('console', (m) => {
    // GET/POST /tools answer 403 as llama-server without --tools does; the UI reads that as
    // "no server tools" (console.info), but Chromium logs every non-2xx fetch.
    const from = (m.location() && m.location().url) || '';
    if (m.type() === 'error' && !(/status of 403/.test(m.text()) && /\/llama\/tools$/.test(from))) {
      consoleErrors.push(m.text() + (from ? ' (' + from + ')' : ''));
    }
  });
  page.on('pageerror', (e) => consoleErrors.push('page error: ' + e.message));
  page.on('request', (r) => {
    const u = new URL(r.url());
    if (u.port === String(port)) requests.push(`${r.method()} ${u.pathname}${u.search}`);
  });
  const shot = (name) => page.screenshot({ path: `${shots}/stock-ui-${name}.png` });
  const made = (re) => requests.some((r) => re.test(r));

  let chatResponse = null; // the streamed answer, as the browser received it
  page.on('requestfinished', async (r) => {
    if (r.method() === 'POST' && /\/v1\/chat\/completions$/.test(r.url())) {
      const resp = r.response();
      chatResponse = { status: resp.status(), type: resp.headers()['content-type'] || '', body: await resp.text().catch(() => '') };
    }
  });
  const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
  const input = '[data-slot="input-area"] textarea, [data-slot="input-area"] [contenteditable="true"]';

  step('open ' + url);
  const res = await page.goto(url, { waitUntil: 'load' });
  const csp = res.headers()['content-security-policy'] || '';
  if (!/script-src 'self'[^;]*'sha256-/.test(csp)) throw new Error('no hash-based script CSP on the page: ' + csp);
  if (/script-src[^;]*'unsafe-inline'/.test(csp)) throw new Error('the page allows inline scripts: ' + csp);
  // The chat input and the model picker's button: the app started in router mode.
  await page.waitForSelector(input);
  const trigger = await page.waitForSelector('[data-slot="input-area"] [aria-haspopup="menu"], [aria-haspopup="menu"]');
  await sleep(1000); // the first list and props answers settle
  await shot('home');

  step('the model picker lists the catalog (router mode)');
  await page.evaluate((a, b) => {
    const t = [...document.querySelectorAll('[aria-haspopup="menu"]')].find(
      (e) => /Select model/.test(e.textContent) || e.textContent.includes(a.split('-')[0]) || e.textContent.includes(b.split('-')[0]),
    );
    (t || document.querySelector('[aria-haspopup="menu"]')).click();
  }, model, other);
  await page.waitForSelector('[role="option"]');
  await page.waitForFunction(
    (a, b) => {
      const texts = [...document.querySelectorAll('[role="option"]')].map((e) => e.textContent);
      return texts.some((t) => t.includes(a)) && texts.some((t) => t.includes(b));
    },
    { timeout: 30000 },
    shown(model),
    shown(other),
  );
  const listed = await page.$$eval('[role="option"]', (els) => els.map((e) => e.textContent.trim()));
  step('picker: ' + JSON.stringify(listed));
  await shot('picker');

  step('choose ' + model + ': the UI loads it through Corral (POST /models/load)');
  await page.evaluate((m) => {
    const opt = [...document.querySelectorAll('[role="option"]')].find((e) => e.textContent.includes(m));
    opt.click();
  }, shown(model));
  const loadedStatus = async () => {
    const r = await fetch(`http://127.0.0.1:${port}/models`);
    const j = await r.json();
    return j.data.find((m) => m.id === model)?.status?.value;
  };
  for (let i = 0; i < 40 && !made(/^POST \/llama\/models\/load$/); ++i) await sleep(250);
  if (made(/^POST \/llama\/models\/load$/)) {
    for (let i = 0; i < 240 && (await loadedStatus()) !== 'loaded'; ++i) await sleep(250);
    if ((await loadedStatus()) !== 'loaded') throw new Error(model + ' was not loaded after the UI asked');
    await sleep(1500); // the UI's feed (/models/sse) shows it
    await shot('loaded');
  } else {
    step('no load on selection: the UI loads the model when the message is sent');
  }

  step('send a message; the answer streams through Corral');
  await page.click(input);
  await page.keyboard.type('Tell me about llamas.');
  await page.keyboard.press('Enter');
  for (let i = 0; i < 480 && !chatResponse; ++i) await sleep(250);
  if (!chatResponse) throw new Error('no chat completion finished');
  step(`chat answer: HTTP ${chatResponse.status}, ${chatResponse.type}, ${chatResponse.body.length} bytes`);
  if (chatResponse.status !== 200 || !/text\/event-stream/.test(chatResponse.type) || !/data: /.test(chatResponse.body)) {
    throw new Error('the chat answer did not stream: ' + JSON.stringify(chatResponse).slice(0, 400));
  }
  await page.waitForSelector('[aria-label="Assistant message with actions"]');
  await sleep(1500);
  const answer = await page.$eval('[aria-label="Assistant message with actions"]', (e) => e.innerText.trim());
  step('assistant message: ' + JSON.stringify(answer.slice(0, 200)));
  if ((await loadedStatus()) !== 'loaded') throw new Error(model + ' is not loaded after the chat');
  await shot('chat');

  // The router-mode requests, as the UI itself made them (through the /llama/ prefix).
  const want = [
    [/^GET \/llama\/props\?autoload=false$/, 'GET /llama/props?autoload=false (the router props)'],
    [/^GET \/llama\/v1\/models$/, 'GET /llama/v1/models (the router list)'],
    [/^POST \/llama\/models\/load$/, 'POST /llama/models/load'],
    [/^GET \/llama\/models\/sse$/, 'GET /llama/models/sse (the status feed)'],
    [/^GET \/llama\/props\?model=[^&]+&autoload=false$|^GET \/llama\/props\?autoload=false&model=/, 'GET /llama/props?model=M&autoload=false'],
    [/^POST \/llama\/v1\/chat\/completions$/, 'POST /llama/v1/chat/completions'],
  ];
  for (const [re, what] of want) {
    if (!made(re)) throw new Error('the UI never made ' + what);
  }
} catch (e) {
  failed = true;
  console.log('[llama-ui test] FAILED: ' + e.message);
  try {
    const pages = await browser.pages();
    const p = pages[pages.length - 1];
    await p.screenshot({ path: `${shots}/stock-ui-failure.png` });
    writeFileSync(`${shots}/failure.txt`, await p.evaluate(() => document.body.innerText));
  } catch {}
} finally {
  const unique = [...new Set(requests)];
  writeFileSync(`${shots}/requests.txt`, requests.join('\n') + '\n');
  step('requests the UI made (' + requests.length + ', unique ' + unique.length + '):\n  ' + unique.join('\n  '));
  await browser.close();
}
if (consoleErrors.length) {
  console.log('[llama-ui test] console errors:\n  ' + consoleErrors.join('\n  '));
  failed = true;
}
process.exit(failed ? 1 : 0);
