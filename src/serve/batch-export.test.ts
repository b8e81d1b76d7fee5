import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { AppError } from '../errors.js';
import { servedShop, type ServedShop } from '../../test/support/served-shop.js';
import { describeEachProvider } from '../../test/support/test-stores.js';
import { exportRecommendations, type ExportOptions } from './batch-export.js';

/**
 * The batch export on the served shop (120 users, a tiny trained model), on
 * SQLite and PostgreSQL: what it writes is what the API answers, an existing
 * output is refused unless asked, and an interrupted export resumes into the
 * same result as an uninterrupted one.
 */
describeEachProvider('batch export', (provider) => {
  let shop: ServedShop;
  beforeAll(async () => {
    shop = await servedShop(provider);
  }, 120_000);
  afterAll(async () => {
    await shop?.dispose();
  });

  const options = (output: string, more: Partial<ExportOptions> = {}): ExportOptions => ({
    users: 'all',
    k: 4,
    format: 'jsonl',
    output,
    overwrite: false,
    resume: false,
    filters: { exclude: 'purchased' },
    workers: 1,
    log: () => {},
    chunkUsers: 25,
    ...more,
  });

  it("writes every user's recommendations as the API answers them, with the rules applied", async () => {
    const output = join(shop.dir, 'all.jsonl');
    const report = await exportRecommendations(shop.store, options(output, { filters: { exclude: 'purchased', filter: 'category = "even"' } }));
    expect(report).toMatchObject({ users: 120, interrupted: false, modelVersion: 1 });
    const lines = readFileSync(output, 'utf8').trim().split('\n').map((l) => JSON.parse(l));
    expect(lines).toHaveLength(120);
    expect(lines[0].user).toBe('user-0'); // in the order users were first seen
    for (const line of lines.filter((_, i) => i % 30 === 7)) {
      const api = await shop.call(`/v1/users/${line.user}/recommendations?k=4&filter=${encodeURIComponent('category = "even"')}`, { role: 'read' });
      expect(line.items.map((i: { item: string }) => i.item)).toEqual(api.body.items.map((i: { item: string }) => i.item));
      line.items.forEach((i: { probability: number }, r: number) => expect(i.probability).toBeCloseTo(api.body.items[r].probability, 6));
    }
    expect(existsSync(`${output}.export-state.json`)).toBe(false); // finished: nothing to resume
  });

  it('refuses an existing output unless told to overwrite or resume it', async () => {
    const output = join(shop.dir, 'exists.csv');
    writeFileSync(output, 'precious\n');
    await expect(exportRecommendations(shop.store, options(output, { format: 'csv' }))).rejects.toMatchObject({ code: 'EXPORT_EXISTS' });
    expect(readFileSync(output, 'utf8')).toBe('precious\n');
    await expect(exportRecommendations(shop.store, options(output, { format: 'csv', resume: true }))).rejects.toMatchObject({ code: 'EXPORT_NOT_RESUMABLE' });
    // A rule that cannot be used fails before anything is written.
    const ruled = join(shop.dir, 'never.jsonl');
    await expect(exportRecommendations(shop.store, options(ruled, { filters: { exclude: 'none', filter: 'price > "cheap"' } }))).rejects.toMatchObject({ code: 'USAGE', message: expect.stringContaining('price holds numbers') });
    expect(existsSync(ruled)).toBe(false);
    await exportRecommendations(shop.store, options(output, { format: 'csv', overwrite: true }));
    const rows = readFileSync(output, 'utf8').trim().split('\n');
    expect(rows[0]).toBe('user_id,rank,item,probability,score');
    expect(rows).toHaveLength(1 + 120 * 4);
    expect(rows[1]).toMatch(/^user-0,1,sku-\d+,0\.\d+,-?\d/);
  });

  it('stops at a chunk when interrupted and resumes into what an uninterrupted run writes', async () => {
    const whole = join(shop.dir, 'whole.jsonl');
    await exportRecommendations(shop.store, options(whole));
    const output = join(shop.dir, 'resumed.jsonl');
    const abort = new AbortController();
    const first = await exportRecommendations(shop.store, options(output, { signal: abort.signal, onProgress: () => abort.abort() }));
    expect(first.interrupted).toBe(true);
    expect(first.users).toBeLessThan(120);
    // A torn last line (a crash mid-write) is cut back to the checkpoint.
    writeFileSync(output, '{"user":"torn', { flag: 'a' });
    await expect(exportRecommendations(shop.store, options(output, { k: 5, resume: true }))).rejects.toMatchObject({ code: 'EXPORT_NOT_RESUMABLE' }); // other parameters
    const second = await exportRecommendations(shop.store, options(output, { resume: true }));
    expect(second).toMatchObject({ interrupted: false, skippedBefore: first.users, users: 120 - first.users });
    expect(readFileSync(output, 'utf8')).toBe(readFileSync(whole, 'utf8'));
  });

  it('exports into recommendation_exports by name, and takes a file of user ids', async () => {
    const users = join(shop.dir, 'users.txt');
    writeFileSync(users, 'user-3\n\nuser-1\nnobody\n');
    const abort = new AbortController();
    const first = await exportRecommendations(shop.store, options('campaign-1', { format: 'table', users: { file: users }, chunkUsers: 1, signal: abort.signal, onProgress: () => abort.abort() }));
    expect(first).toMatchObject({ users: 1, interrupted: true });
    await expect(exportRecommendations(shop.store, options('campaign-1', { format: 'table', users: { file: users } }))).rejects.toBeInstanceOf(AppError);
    await exportRecommendations(shop.store, options('campaign-1', { format: 'table', users: { file: users }, resume: true }));
    const rows = await shop.store.prisma.recommendationExport.findMany({ where: { exportName: 'campaign-1' }, orderBy: { position: 'asc' } });
    expect(rows.map((r) => [r.position, r.userId, r.strategy])).toEqual([
      [1, 'user-3', 'model'],
      [3, 'user-1', 'model'],
      [4, 'nobody', 'popular'], // a user the store does not know gets the popular fallback, as from the API
    ]);
    expect(rows[0]!.items).toHaveLength(4);
    await exportRecommendations(shop.store, options('campaign-1', { format: 'table', users: { file: users }, overwrite: true, k: 2 }));
    const replaced = await shop.store.prisma.recommendationExport.findMany({ where: { exportName: 'campaign-1' } });
    expect(replaced.map((r) => (r.items as unknown[]).length)).toEqual([2, 2, 2]);
  });
});
