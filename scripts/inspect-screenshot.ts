// Screenshots the /inspect page for the README: a running server, a read key
// and a user id. Uses Debian's Chromium through playwright-core (nothing is
// downloaded).
//   npx tsx scripts/inspect-screenshot.ts --url http://127.0.0.1:8080 --key dev-read-key --user 1 --out docs/inspect-amazon-games.png
import { parseArgs } from 'node:util';
import { chromium } from 'playwright-core';

const { values } = parseArgs({
  options: {
    url: { type: 'string', default: 'http://127.0.0.1:8080' },
    key: { type: 'string', default: 'dev-read-key' },
    user: { type: 'string', default: '1' },
    out: { type: 'string', default: 'docs/inspect-amazon-games.png' },
    hover: { type: 'string' },
    chromium: { type: 'string', default: process.env.CHROMIUM_PATH ?? '/usr/bin/chromium' },
  },
});
const browser = await chromium.launch({ executablePath: values.chromium, args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync'] });
try {
  const page = await browser.newPage({ viewport: { width: 1400, height: 900 } });
  await page.goto(`${values.url}/inspect/`);
  await page.fill('#key', values.key!);
  await page.click('#key-form button');
  await page.waitForFunction(() => document.querySelector('#key-state')?.textContent?.includes('key accepted'));
  await page.fill('#user', values.user!);
  await page.click('#load');
  await page.waitForSelector('[data-testid=panel]');
  if (values.hover) await page.hover(`[data-testid=history-event][data-position="${values.hover}"]`);
  await page.screenshot({ path: values.out!, fullPage: true });
  process.stdout.write(`wrote ${values.out}\n`);
} finally {
  await browser.close();
}
