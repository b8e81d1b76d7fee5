/// <reference lib="dom" />
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { chromium, type Browser, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { KEYS, servedShop, type ServedShop } from '../../../test/support/served-shop.js';
import { reportHtml } from '../export-html.js';

/** Debian's Chromium (`apt-get install chromium`; .ci/run installs it). Never a downloaded browser. */
const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
const SHOTS = join(import.meta.dirname, '..', '..', '..', 'test-results', 'inspect');

describe.skipIf(!existsSync(CHROMIUM))('the /inspect page in Chromium', () => {
  let shop: ServedShop;
  let browser: Browser;
  let page: Page;
  let second: number;
  let long: number;

  beforeAll(async () => {
    mkdirSync(SHOTS, { recursive: true });
    shop = await servedShop('sqlite');
    second = await shop.trainAnother(2);
    long = await shop.trainAnother(3, { maxLength: 200 });
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
    });
    page = await browser.newPage({ viewport: { width: 1400, height: 1000 } });
  }, 180_000);
  afterAll(async () => {
    await browser?.close();
    await shop?.dispose();
  });

  async function useKey(key: string): Promise<void> {
    await page.goto(`${shop.url}/inspect/`);
    await page.fill('#key', key);
    await page.click('#key-form button');
  }

  it('refuses a wrong key with the API problem, then loads a user: timeline, predictions, one heatmap per layer and head', async () => {
    await useKey('not-a-key');
    await expect.poll(() => page.textContent('#status')).toContain('UNAUTHORIZED');
    await useKey(KEYS.read);
    await expect.poll(() => page.textContent('#key-state')).toContain('key accepted');
    expect(await page.evaluate(() => sessionStorage.getItem('attnrec.key'))).toBe(KEYS.read);
    await page.fill('#user', 'user-0');
    await page.click('#load');
    await page.waitForSelector('[data-testid=panel]');
    const events = await shop.store.prisma.event.count({ where: { user: { externalId: 'user-0' } } });
    const T = Math.min(10, events);
    expect(await page.locator('[data-testid=history-event]').count()).toBe(T);
    expect(await page.locator('[data-testid=prediction]').count()).toBe(10);
    expect(await page.locator('[data-testid=heatmap]').count()).toBe(2); // 1 layer × 2 heads
    expect(await page.locator('[data-testid=rollout] .bar').count()).toBe(T);
    expect(await page.locator('[data-testid=leave-one-out] .bar').count()).toBe(T);
    expect(await page.locator('[data-testid=legend]').count()).toBe(1);
    expect(await page.locator('[data-testid=heatmap]').first().evaluate((c: HTMLCanvasElement) => [c.width, c.height])).toEqual([T, T]);
    await page.screenshot({ path: join(SHOTS, 'user.png'), fullPage: true });
  });

  it('hovering an event highlights it in the timeline, the bars and every heatmap', async () => {
    const pixel = (): Promise<number[]> =>
      page.locator('[data-testid=heatmap]').first().evaluate((c: HTMLCanvasElement) => Array.from(c.getContext('2d')!.getImageData(1, 4, 1, 1).data));
    const before = await pixel();
    await page.hover('[data-testid=history-event][data-position="1"]');
    await expect.poll(() => page.getAttribute('[data-testid=panel]', 'data-hover')).toBe('1');
    expect(await page.locator('.hover').count()).toBe(3); // the card, its rollout bar, its leave-one-out bar
    await expect.poll(pixel).not.toEqual(before); // column 1 of the heatmap is outlined
    await page.screenshot({ path: join(SHOTS, 'hover.png'), fullPage: true });
    await page.mouse.move(0, 0);
    await expect.poll(() => page.getAttribute('[data-testid=panel]', 'data-hover')).toBe('');
  });

  it('shows the same history under two versions side by side', async () => {
    await page.selectOption('#version-a', '1');
    await page.selectOption('#version-b', String(second));
    await page.click('#load');
    await expect.poll(() => page.locator('[data-testid=panel]').count()).toBe(2);
    expect(await page.locator('[data-testid=panel]').evaluateAll((panels) => panels.map((p) => p.getAttribute('data-version')))).toEqual(['1', String(second)]);
    await page.screenshot({ path: join(SHOTS, 'compare.png'), fullPage: true });
  });

  it('draws the latest inspection when an earlier one answers later', async () => {
    await page.selectOption('#version-b', '');
    await page.route('**/v1/users/user-1/attention?**', async (route) => {
      await new Promise((resolve) => setTimeout(resolve, 1_500));
      await route.continue();
    });
    await page.fill('#user', 'user-1');
    await page.click('#load');
    await page.fill('#user', 'user-2');
    await page.click('#load');
    await expect.poll(() => page.textContent('[data-testid=panel]')).toContain('User user-2');
    // Past user-1's late answer: it must not have replaced user-2's panel.
    await new Promise((resolve) => setTimeout(resolve, 2_000));
    await page.unroute('**/v1/users/user-1/attention?**');
    expect(await page.locator('[data-testid=panel]').count()).toBe(1);
    expect(await page.textContent('[data-testid=panel]')).toContain('User user-2');
  });

  it('draws an exported HTML report offline, without the API or a key', async () => {
    const report = (await shop.call('/v1/users/user-3/attention?k=5', { role: 'read' })).body;
    const file = join(SHOTS, 'export.html');
    writeFileSync(file, reportHtml([{ ...report, title: 'User user-3 (exported)' }]));
    const offline = await browser.newPage();
    await offline.goto(`file://${file}`);
    await offline.waitForSelector('[data-testid=panel]');
    expect(await offline.locator('[data-testid=heatmap]').count()).toBe(2);
    expect(await offline.locator('[data-testid=prediction]').count()).toBe(5);
    expect(await offline.isVisible('#query')).toBe(false);
    await offline.close();
  });

  it('draws a pasted 200-event session without freezing the page', async () => {
    const session = Array.from({ length: 200 }, (_, i) => ({ item: `sku-${i % 12}`, type: i % 7 === 6 ? 'purchase' : 'view' }));
    await page.fill('#user', '');
    await page.click('#session-box summary');
    await page.fill('#session', JSON.stringify(session));
    await page.selectOption('#version-a', String(long));
    await page.selectOption('#version-b', '');
    const started = Date.now();
    await page.click('#load');
    await expect.poll(() => page.locator('[data-testid=history-event]').count(), { timeout: 20_000 }).toBe(200);
    expect(await page.locator('[data-testid=heatmap]').first().evaluate((c: HTMLCanvasElement) => c.width)).toBe(200);
    // Hovering redraws every heatmap; the page must stay responsive.
    const hoverStarted = Date.now();
    await page.hover('[data-testid=history-event][data-position="150"]');
    await expect.poll(() => page.getAttribute('[data-testid=panel]', 'data-hover')).toBe('150');
    expect(Date.now() - hoverStarted).toBeLessThan(5_000);
    expect(Date.now() - started).toBeLessThan(20_000);
    await page.screenshot({ path: join(SHOTS, 'session-200.png'), fullPage: true });
  });
});
