/// <reference lib="dom" />
import { existsSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { chromium, type Browser, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { simulateShoppers } from '../../../../bench/shopper-simulator.js';
import { KEYS, LOOP_TUNING, servedShop, settleAttribution, type ServedShop } from '../../../../test/support/served-shop.js';

/** Debian's Chromium (`apt-get install chromium`; .ci/run installs it). Never a downloaded browser. */
const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
const SHOTS = join(import.meta.dirname, '..', '..', '..', '..', 'test-results', 'online');

describe.skipIf(!existsSync(CHROMIUM))('the /online page in Chromium', () => {
  let shop: ServedShop;
  let browser: Browser;
  let page: Page;

  beforeAll(async () => {
    mkdirSync(SHOTS, { recursive: true });
    shop = await servedShop('sqlite', { modelPollSeconds: 0 }, { tuning: LOOP_TUNING });
    const created = await shop.call('/v1/experiments', {
      method: 'POST',
      body: { name: 'model vs popular', routes: ['user_recommendations'], variants: [{ name: 'model', modelVersion: 1, share: 0.5, control: true }, { name: 'popular', strategy: 'popular', share: 0.5 }] },
    });
    await shop.call(`/v1/experiments/${created.body.id}/start`, { method: 'POST' });
    const shoppers = Array.from({ length: 40 }, (_, u) => ({ id: `user-${u}`, next: Array.from({ length: 3 }, (_, s) => `sku-${(u + s) % 12}`) }));
    await simulateShoppers({ url: shop.url, key: KEYS.write, shoppers, seed: 5, explicit: true });
    await settleAttribution(shop);
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
    });
    page = await browser.newPage({ viewport: { width: 1300, height: 1000 } });
  }, 180_000);
  afterAll(async () => {
    await browser?.close();
    await shop?.dispose();
  });

  it('refuses a wrong key, then shows each group with intervals, a plot per metric over time, and the experiment against control', async () => {
    await page.goto(`${shop.url}/online/`);
    await page.fill('#key', 'not-a-key');
    await page.click('#key-form button');
    await expect.poll(() => page.textContent('#status')).toContain('UNAUTHORIZED');
    // The load the accepted key starts (by the default grouping) answers late, after the one by variant asked
    // for next: the page must show the later load's groups, not the slower earlier answer's.
    await page.route('**/v1/metrics/online?**', async (route) => {
      if (new URL(route.request().url()).searchParams.get('groupBy') !== 'variant') await new Promise((resolve) => setTimeout(resolve, 1_500));
      await route.continue();
    });
    await page.fill('#key', KEYS.read);
    await page.click('#key-form button');
    await expect.poll(() => page.textContent('#key-state')).toContain('key accepted');
    await page.selectOption('#group-by', 'variant');
    await page.click('#load');
    await expect.poll(() => page.textContent('#status')).toContain('impressions');
    // Past the late answer: it must not have replaced the groups by variant.
    await new Promise((resolve) => setTimeout(resolve, 2_000));
    await page.unroute('**/v1/metrics/online?**');
    await expect.poll(() => page.locator('[data-testid=group-row]').evaluateAll((rows) => rows.map((r) => r.getAttribute('data-group')))).toEqual(['1/model', '1/popular']);
    // Each rate with its interval: "x.xx % [a.aa %, b.bb %]".
    expect(await page.locator('[data-testid=group-row]').first().textContent()).toMatch(/\d+\.\d\d % \[\d+\.\d\d %, \d+\.\d\d %\]/);
    expect(await page.locator('[data-testid=plot]').count()).toBe(4);
    expect(await page.locator('[data-testid=plot][data-metric=conversion] polyline').count()).toBe(2);
    expect(await page.locator('[data-testid=experiment]').count()).toBe(1);
    expect(await page.locator('[data-testid=variant-row]').count()).toBe(2);
    expect(await page.locator('[data-testid=variant-row][data-variant=popular]').textContent()).toMatch(/lift -?\d+\.\d %/);
    expect(await page.textContent('[data-testid=experiment] .state')).toContain('two-proportion z-test');
    await page.screenshot({ path: join(SHOTS, 'online.png'), fullPage: true });
  });

  it('says what is wrong with a period the API refuses', async () => {
    await page.fill('#from', '2026-01-02T00:00');
    await page.fill('#to', '2026-01-01T00:00');
    await page.click('#load');
    await expect.poll(() => page.textContent('#status')).toContain('VALIDATION_FAILED');
    expect(await page.getAttribute('#status', 'class')).toContain('error');
  });
});
