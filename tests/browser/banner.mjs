// SPDX-License-Identifier: MIT
// The status page's first screen in Debian's chromium (puppeteer-core), kept open while a
// test plays faults against serve. Driven by tests/integration/test_incident.cpp:
//
//   node banner.mjs BASE_URL DIR
//
// With BANNER_TOKEN set, the page is opened as an operator would open a serve that needs a
// token: the browser's Basic prompt answered with the token as the password; an https://
// BASE_URL is served with the test's own CA, which this browser is told to accept.
//
// For n = 1, 2, …: waits for DIR/expect-n (the text the banner must come to hold, e.g.
// "auth_failed"), then for the headline (#headline, the first screen's first line) to hold it, and prints one JSON line
// {"n", "ok", "ms", "text"}. Ends at DIR/done, printing {"done": true, "errors": [...]}
// (the console's errors).
import { existsSync, readFileSync } from 'node:fs';
import puppeteer from 'puppeteer-core';

const [base, dir] = process.argv.slice(2);
const say = (o) => console.log(JSON.stringify(o));
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

const browser = await puppeteer.launch({
  executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
  headless: true,
  args: ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage',
         '--disable-background-networking', '--disable-component-update', '--no-first-run',
         ...(base.startsWith('https:') ? ['--ignore-certificate-errors'] : [])],
});
const errors = [];
try {
  const page = await browser.newPage();
  page.on('pageerror', (e) => errors.push(String(e)));
  page.on('console', (m) => { if (m.type() === 'error') errors.push(m.text()); });
  if (process.env.BANNER_TOKEN)
    await page.authenticate({ username: 'operator', password: process.env.BANNER_TOKEN });
  await page.setViewport({ width: 1440, height: 900 });
  await page.goto(base + '/', { waitUntil: 'domcontentloaded' });
  say({ ready: true });
  for (let n = 1; ; ++n) {
    while (!existsSync(`${dir}/expect-${n}`) && !existsSync(`${dir}/done`)) await sleep(20);
    if (existsSync(`${dir}/done`) && !existsSync(`${dir}/expect-${n}`)) break;
    const wanted = readFileSync(`${dir}/expect-${n}`, 'utf8').trim();
    const from = Date.now();
    let ok = true;
    try {
      await page.waitForFunction(
        (w) => (document.getElementById('headline')?.textContent || '').includes(w),
        { timeout: 30000, polling: 100 }, wanted);
    } catch {
      ok = false;
    }
    const text = await page.evaluate(() => document.getElementById('headline')?.textContent || '');
    say({ n, ok, ms: Date.now() - from, text });
  }
} finally {
  await browser.close();
}
say({ done: true, errors });
