import { afterEach, beforeEach, expect, it } from 'vitest';
import { servingReader, type ServingReader } from '../data/serving-reader.js';
import { describeEachProvider, scratchStore } from '../../test/support/test-stores.js';
import { CatalogCache } from './catalog-cache.js';

describeEachProvider('catalogue cache', (provider) => {
  let store: Awaited<ReturnType<typeof scratchStore>>;
  let reader: ServingReader;
  beforeEach(async () => {
    store = await scratchStore(provider);
    reader = servingReader(store);
    // More than two pages of a reload, with gaps in the ids.
    await store.prisma.item.createMany({ data: Array.from({ length: 2_500 }, (_, i) => ({ externalId: `sku-${i}`, title: `Item ${i}`, category: i % 2 ? 'odd' : 'even', price: i })) });
    await store.prisma.item.deleteMany({ where: { externalId: { in: ['sku-999', 'sku-1000', 'sku-2000'] } } });
  }, 60_000);
  afterEach(async () => {
    reader.close();
    await store.dispose();
  });

  it('reads every item, page by page, and keeps serving the previous catalogue until the last page is in', async () => {
    const catalog = new CatalogCache(reader);
    await catalog.reload();
    expect(catalog.size).toBe(2_497);
    expect(catalog.byExternalId('sku-2499')).toMatchObject({ title: 'Item 2499', category: 'odd', price: 2499, active: true });
    expect(catalog.byExternalId('sku-1000')).toBeUndefined();
    const first = catalog.byExternalId('sku-0')!;
    expect(catalog.byInternalId(first.id)).toBe(first);
    expect(catalog.items().map((item) => item.id)).toEqual([...catalog.items().map((item) => item.id)].sort((a, b) => a - b));

    await store.prisma.item.update({ where: { externalId: 'sku-2499' }, data: { title: 'Renamed' } });
    await store.prisma.item.create({ data: { externalId: 'sku-new', title: 'New' } });
    const generation = catalog.generation;
    const reloading = catalog.reload();
    // The reload yields between pages; until it switches, lookups answer from the catalogue it replaces.
    expect(catalog.byExternalId('sku-2499')?.title).toBe('Item 2499');
    expect(catalog.byExternalId('sku-new')).toBeUndefined();
    await reloading;
    expect(catalog.generation).toBe(generation + 1);
    expect(catalog.size).toBe(2_498);
    expect(catalog.byExternalId('sku-2499')?.title).toBe('Renamed');
    expect(catalog.byExternalId('sku-new')?.title).toBe('New');
  });
});

it('reads an empty catalogue', async () => {
  const store = await scratchStore('sqlite');
  const reader = servingReader(store);
  try {
    const catalog = new CatalogCache(reader);
    await catalog.reload();
    expect(catalog.size).toBe(0);
    expect(catalog.items()).toEqual([]);
  } finally {
    reader.close();
    await store.dispose();
  }
});
