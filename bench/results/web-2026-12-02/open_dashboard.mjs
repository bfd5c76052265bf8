// Keeps the web dashboard open on its Charts page (redrawn every second from the feed) in
// headless Chromium until killed: the "open" condition of run.sh.
//   node open_dashboard.mjs http://127.0.0.1:PORT/ui/#charts NODE_MODULES_DIR [SCREENSHOT.png]
// (the screenshot is taken when it is told to stop)
import { createRequire } from 'node:module';
const require = createRequire(process.argv[3].replace(/\/?$/, '/'));
const puppeteer = require('puppeteer-core');
const browser = await puppeteer.launch({
  executablePath: '/usr/bin/chromium',
  headless: true,
  args: ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage'],
  defaultViewport: { width: 1400, height: 1000 },
  handleSIGTERM: false, // our own handler takes the screenshot first
  handleSIGINT: false,
});
const page = await browser.newPage();
await page.goto(process.argv[2], { waitUntil: 'load' });
await page.waitForFunction(() => document.getElementById('conn').textContent === 'live');
console.log('dashboard open');
const stop = async () => {
  if (process.argv[4]) await page.screenshot({ path: process.argv[4], fullPage: true });
  await browser.close();
  process.exit(0);
};
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
setInterval(() => {}, 1 << 30);
