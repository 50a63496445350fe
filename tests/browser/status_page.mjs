// SPDX-License-Identifier: MIT
// Debian's chromium, headless, driven by puppeteer-core, on modelrepo serve's status page.
// Driven by tests/integration/test_status_page.cpp through files and stdout:
//
//   node status_page.mjs BASE_URL OUT_DIR
//
// Prints one JSON line per step ({"step": …}); before a step that needs the test to act
// it prints {"step": "wait", "for": NAME} and waits for OUT_DIR/NAME to exist.
//   healthy    the first screen says all is well; the sources and the 32 models shown; at
//              1440x900 and 390x844: words split across lines (none expected), sideways
//              scroll, screenshots status-page-{1440,390}-healthy.png
//   updated    (after "update": a psql UPDATE of gpt-5's status) the cell changed, ms
//   incident   (after "incident": the role's password changed, its sessions ended) the
//              first screen names the cause, ms; the same checks at both widths,
//              screenshots status-page-{1440,390}-incident.png
//   recovered  (after "fixed") the first screen says all is well again
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

/** Each visible word whose Range lies on more than one line, with where it is. */
function splitWords() {
  const split = [];
  const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
  for (let node = walker.nextNode(); node; node = walker.nextNode()) {
    const parent = node.parentElement;
    if (!parent || parent.closest('script, style, [hidden]')) continue;
    const text = node.textContent;
    for (const m of text.matchAll(/\S+/g)) {
      const range = document.createRange();
      range.setStart(node, m.index);
      range.setEnd(node, m.index + m[0].length);
      const rects = [...range.getClientRects()].filter((r) => r.width > 0 && r.height > 0);
      if (rects.length < 2) continue;
      const tops = rects.map((r) => r.top);
      if (Math.max(...tops) - Math.min(...tops) > 2)
        split.push({ word: m[0], in: parent.tagName + (parent.id ? '#' + parent.id : '') +
                     (parent.className ? '.' + String(parent.className).split(' ')[0] : '') });
    }
  }
  return split;
}

/** The first screen's text, whether anything overflows sideways, the split words. */
async function look(page, width, height, shot) {
  await page.setViewport({ width, height });
  await sleep(400); // a layout pass and a repaint
  const seen = await page.evaluate(`(${splitWords.toString()})()`);
  const facts = await page.evaluate(() => ({
    first_screen: document.getElementById('hero').innerText,
    hero_bottom: document.getElementById('hero').getBoundingClientRect().bottom,
    // The headline and its facts (what to do, meanwhile, since): the first screen's must.
    facts_bottom: document.getElementById('facts').getBoundingClientRect().bottom,
    scroll_width: document.documentElement.scrollWidth,
    inner_width: window.innerWidth,
  }));
  // The first screen is what a person sees on opening the page; the desktop shot shows the whole page.
  await page.screenshot({ path: `${out}/${shot}`, fullPage: width > 800 });
  return { width, split: seen, ...facts };
}

const browser = await puppeteer.launch({
  executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
  headless: true,
  args: ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage',
         '--disable-background-networking', '--disable-component-update', '--no-first-run'],
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
  await page.setViewport({ width: 1440, height: 900 });
  await page.goto(base + '/', { waitUntil: 'domcontentloaded' });
  await page.waitForFunction(
    () => document.querySelectorAll('#sources li.source').length >= 2 &&
          document.querySelectorAll('#models tbody tr').length >= 32 &&
          document.getElementById('headline').textContent.includes('All sources are up'),
    { timeout: 20000 });
  const loaded = await page.evaluate(() => ({
    sources: [...document.querySelectorAll('#sources li.source')].map((r) => r.dataset.source),
    models: document.querySelectorAll('#models tbody tr').length,
    health: document.querySelector('#models tr[data-slug="gpt-5"] td.health')?.textContent,
  }));
  const wide = await look(page, 1440, 900, 'status-page-1440-healthy.png');
  const phone = await look(page, 390, 844, 'status-page-390-healthy.png');
  say({ step: 'healthy', ...loaded, wide, phone });

  await page.setViewport({ width: 1440, height: 900 });
  const updated = await waitFile('update');
  await page.waitForFunction(
    () => document.querySelector('#models tr[data-slug="gpt-5"] td.health')?.textContent === 'outage',
    { timeout: 10000 });
  say({ step: 'updated', ms: Date.now() - updated });

  const broke = await waitFile('incident');
  await page.waitForFunction(
    () => document.getElementById('headline').textContent.includes('auth_failed'),
    { timeout: 20000, polling: 100 });
  const incidentMs = Date.now() - broke;
  // The doctor's finding comes a moment later; then the two widths.
  await page.waitForFunction(() => !document.getElementById('fact-fix').hidden, { timeout: 20000 });
  const wideIncident = await look(page, 1440, 900, 'status-page-1440-incident.png');
  const phoneIncident = await look(page, 390, 844, 'status-page-390-incident.png');
  const text = await page.evaluate(() => document.body.innerText);
  say({ step: 'incident', ms: incidentMs, wide: wideIncident, phone: phoneIncident, text });

  await page.setViewport({ width: 1440, height: 900 });
  await waitFile('fixed');
  await page.waitForFunction(
    () => document.getElementById('headline').textContent.includes('All sources are up'),
    { timeout: 60000 });
  say({ step: 'recovered', headline: await page.$eval('#headline', (e) => e.textContent) });
} catch (e) {
  say({ step: 'failed', error: String(e), errors });
  process.exitCode = 1;
} finally {
  say({ step: 'done', errors });
  await browser.close();
}
