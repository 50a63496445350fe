// SPDX-License-Identifier: MIT
// Debian's chromium, headless, driven by puppeteer-core, on modelrepo serve's status page.
// Driven by tests/integration/test_status_page.cpp through files and stdout:
//
//   node status_page.mjs BASE_URL OUT_DIR
//
// Prints one JSON line per step ({"step": …}); before a step that needs the test to act
// it prints {"step": "wait", "for": NAME} and waits for OUT_DIR/NAME to exist.
//   loaded     every source and the 32 models are shown
//   updated    (after "update": a psql UPDATE of gpt-5's status) the cell changed, ms
//   backup     (after "killed": the database was killed) the page says a backup serves and
//              the timeline has served_by_backup, ms; screenshot OUT_DIR/status-page.png
//   recovered  (after "restarted") the timeline has primary_recovered
//   narrow     at 375 px wide nothing overflows sideways; OUT_DIR/status-page-375.png
//   done       the console's errors (none expected)
import { existsSync } from 'node:fs';
import puppeteer from 'puppeteer-core';

const [base, out] = process.argv.slice(2);
const say = (o) => console.log(JSON.stringify(o));
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
async function waitFile(name) {
  say({ step: 'wait', for: name });
  const limit = Date.now() + 120000;
  while (!existsSync(`${out}/${name}`)) {
    if (Date.now() > limit) throw new Error(`no ${name} from the test`);
    await sleep(20);
  }
  return Date.now();
}

const browser = await puppeteer.launch({
  executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
  headless: true,
  args: ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage'],
});
const errors = [];
try {
  const page = await browser.newPage();
  page.on('console', (m) => { if (m.type() === 'error') errors.push(m.text()); });
  page.on('pageerror', (e) => errors.push(String(e)));
  page.on('requestfailed', (r) => {
    // A stream cut by the page's own unload is not an error of the page.
    if (!r.url().includes('/stream') && !r.url().includes('/v1/changes'))
      errors.push(`request failed: ${r.url()} ${r.failure()?.errorText}`);
  });
  await page.setViewport({ width: 1280, height: 900 });
  await page.goto(base + '/', { waitUntil: 'domcontentloaded' });
  await page.waitForFunction(
    () => document.querySelectorAll('#sources tbody tr').length >= 2 &&
          document.querySelectorAll('#models tbody tr').length >= 32, { timeout: 15000 });
  const loaded = await page.evaluate(() => ({
    sources: [...document.querySelectorAll('#sources tbody tr')].map((r) => r.dataset.source),
    models: document.querySelectorAll('#models tbody tr').length,
    state: document.getElementById('state').textContent,
    health: document.querySelector('#models tr[data-slug="gpt-5"] td.health')?.textContent,
  }));
  say({ step: 'loaded', ...loaded });

  const updated = await waitFile('update');
  await page.waitForFunction(
    () => document.querySelector('#models tr[data-slug="gpt-5"] td.health')?.textContent === 'outage',
    { timeout: 10000 });
  say({ step: 'updated', ms: Date.now() - updated });

  const killed = await waitFile('killed');
  await page.waitForFunction(
    () => document.getElementById('state').textContent.includes('a backup is serving') &&
          document.querySelector('#timeline li[data-event="served_by_backup"]'),
    { timeout: 20000 });
  const backupMs = Date.now() - killed;
  const shown = await page.evaluate(() => ({
    state: document.getElementById('state').textContent,
    timeline: [...document.querySelectorAll('#timeline li')].map((l) => l.textContent),
    diagnosis: document.getElementById('diagnosis').hidden ? null
      : document.getElementById('diagnosis').textContent,
    text: document.body.innerText,
  }));
  await page.screenshot({ path: `${out}/status-page.png`, fullPage: true });
  say({ step: 'backup', ms: backupMs, ...shown });

  await waitFile('restarted');
  await page.waitForFunction(
    () => document.querySelector('#timeline li[data-event="primary_recovered"]') &&
          !document.getElementById('state').textContent.includes('a backup is serving'),
    { timeout: 60000 });
  say({ step: 'recovered', state: await page.$eval('#state', (e) => e.textContent) });

  await page.setViewport({ width: 375, height: 800 });
  await sleep(500);
  const width = await page.evaluate(() => document.documentElement.scrollWidth);
  await page.screenshot({ path: `${out}/status-page-375.png`, fullPage: true });
  say({ step: 'narrow', scroll_width: width, html: await page.content() });
} catch (e) {
  say({ step: 'failed', error: String(e), errors });
  process.exitCode = 1;
} finally {
  say({ step: 'done', errors });
  await browser.close();
}
