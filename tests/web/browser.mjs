// What the browser scripts of tests/web share: puppeteer-core from the build's npm tree and
// Debian's headless Chromium, as the C++ side (tests/web/browser_test.h) passes them in
// CORRAL_WEB_NPM and CORRAL_CHROMIUM. Nothing is downloaded.
import { createRequire } from 'node:module';

const require = createRequire(process.env.CORRAL_WEB_NPM.replace(/\/?$/, '/'));
const puppeteer = require('puppeteer-core');

export function launchBrowser() {
  return puppeteer.launch({
    executablePath: process.env.CORRAL_CHROMIUM || '/usr/bin/chromium',
    headless: true,
    args: ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage', '--no-first-run', '--window-size=1400,1000'],
    defaultViewport: { width: 1400, height: 1000 },
    timeout: 30000,
  });
}
