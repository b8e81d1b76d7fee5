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

  it('adds the items an event batch named that it does not hold, reading those alone, in id order', async () => {
    const catalog = new CatalogCache(reader);
    await catalog.reload();
    const highest = catalog.itemAt(catalog.size - 1)!.id;
    const gap = catalog.byExternalId('sku-998')!.id + 1; // sku-999's id, deleted: below the highest
    await store.prisma.item.create({ data: { id: gap, externalId: 'sku-gap', title: 'In a gap' } });
    await store.prisma.item.create({ data: { id: highest + 10, externalId: 'sku-late', title: 'Late' } });
    await store.prisma.item.update({ where: { externalId: 'sku-0' }, data: { title: 'Renamed, not re-read' } });
    const generation = catalog.generation;
    await catalog.addItems(['sku-0', 'sku-late', 'sku-gap', 'no-such-item', 'sku-late']);
    expect(catalog.generation).toBe(generation + 1);
    expect(catalog.size).toBe(2_499);
    expect(catalog.byExternalId('sku-gap')).toMatchObject({ id: gap, title: 'In a gap', active: true });
    expect(catalog.byInternalId(highest + 10)?.externalId).toBe('sku-late');
    expect(catalog.byExternalId('no-such-item')).toBeUndefined();
    expect(catalog.byExternalId('sku-0')?.title).toBe('Item 0'); // known items are not read again
    const ids = catalog.items().map((item) => item.id);
    expect(ids).toEqual([...ids].sort((a, b) => a - b));
    expect(ids.at(-1)).toBe(highest + 10);
    // Nothing new: no read, no new generation (per-model views and compiled rules stay).
    await catalog.addItems(['sku-1', 'sku-gap']);
    await catalog.addItems(['still-no-such-item']);
    expect(catalog.generation).toBe(generation + 1);
  });

  it('reloads asked for while one runs share the next one, which starts after them all', async () => {
    const gated = gatedReader(reader);
    const catalog = new CatalogCache(gated.reader);
    await catalog.reload();
    gated.close();
    const running = catalog.reload();
    await new Promise((resolve) => setTimeout(resolve, 20)); // it has read its first page and waits
    await store.prisma.item.create({ data: { externalId: 'sku-written-meanwhile' } });
    const waiting = [catalog.reload(), catalog.reload(), catalog.reload()];
    gated.open();
    await Promise.all([running, ...waiting]);
    expect(gated.firstPages).toBe(3); // the first reload, the running one, and one for the three that waited
    expect(catalog.generation).toBe(3);
    expect(catalog.byExternalId('sku-written-meanwhile')).toBeDefined();
  });

  it('refresh reads the catalogue again only when the store changed it: any writer, any way', async () => {
    let pages = 0;
    const counting: ServingReader = { ...reader, catalog: async (after, limit) => (pages++, reader.catalog(after, limit)) };
    const catalog = new CatalogCache(counting);
    await catalog.reload();
    const unchanged = async (): Promise<void> => {
      const [before, generation] = [pages, catalog.generation];
      expect(await catalog.refresh()).toBe(false);
      expect([pages, catalog.generation]).toEqual([before, generation]);
    };
    const reloads = async (check: () => void): Promise<void> => {
      expect(await catalog.refresh()).toBe(true);
      check();
      await unchanged();
    };
    await unchanged();
    // Items an event batch created, and this server added: as many items as the store holds.
    await store.prisma.item.create({ data: { externalId: 'sku-from-an-event' } });
    await catalog.addItems(['sku-from-an-event']);
    await unchanged();
    // An item another process created (an import of new items, another replica's event).
    await store.prisma.item.create({ data: { externalId: 'sku-imported', title: 'Imported' } });
    await reloads(() => expect(catalog.byExternalId('sku-imported')?.title).toBe('Imported'));
    // Updates, through Prisma and in plain SQL.
    await store.prisma.item.update({ where: { externalId: 'sku-7' }, data: { price: 70 } });
    await reloads(() => expect(catalog.byExternalId('sku-7')?.price).toBe(70));
    const deactivate = "UPDATE items SET active = false WHERE external_id = 'sku-8'";
    if (store.provider === 'sqlite') store.db.exec(deactivate);
    else await store.pool.query(deactivate);
    await reloads(() => expect(catalog.byExternalId('sku-8')?.active).toBe(false));
    // A delete and an insert: as many items as before, and yet another catalogue.
    await store.prisma.item.delete({ where: { externalId: 'sku-9' } });
    await store.prisma.item.create({ data: { externalId: 'sku-instead' } });
    expect(catalog.size).toBe(2_499);
    await reloads(() => {
      expect(catalog.byExternalId('sku-9')).toBeUndefined();
      expect(catalog.byExternalId('sku-instead')).toBeDefined();
      expect(catalog.size).toBe(2_499);
    });
    // A rolled-back change counts for nothing.
    await store.prisma.$transaction(async (tx) => {
      await tx.item.update({ where: { externalId: 'sku-10' }, data: { title: 'Never' } });
      throw new Error('rolled back');
    }).catch(() => {});
    await unchanged();
  });

  it('a change while a reload reads its pages makes the next refresh read again', async () => {
    const gated = gatedReader(reader);
    const catalog = new CatalogCache(gated.reader);
    gated.close();
    const reloading = catalog.reload();
    await new Promise((resolve) => setTimeout(resolve, 20)); // its first page (sku-0 …) is read
    await store.prisma.item.update({ where: { externalId: 'sku-0' }, data: { title: 'Renamed meanwhile' } });
    gated.open();
    await reloading;
    expect(catalog.byExternalId('sku-0')?.title).toBe('Item 0');
    expect(await catalog.refresh()).toBe(true);
    expect(catalog.byExternalId('sku-0')?.title).toBe('Renamed meanwhile');
  });

  it('an addition during a reload lands in the catalogue the reload switches to', async () => {
    // A reload that waits before its second page: it has read the page holding the new item's id without it.
    const gated = gatedReader(reader);
    const catalog = new CatalogCache(gated.reader);
    await catalog.reload();
    const gap = catalog.byExternalId('sku-998')!.id + 1;
    gated.close();
    const reloading = catalog.reload();
    await new Promise((resolve) => setTimeout(resolve, 20)); // its first page is read
    await store.prisma.item.create({ data: { id: gap, externalId: 'sku-gap', title: 'In a gap' } });
    const adding = catalog.addItems(['sku-gap']);
    gated.open();
    await Promise.all([reloading, adding]);
    expect(catalog.byExternalId('sku-gap')?.id).toBe(gap);
    expect(catalog.size).toBe(2_498);
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

/**
 * `reader` with a gate before every catalogue page but the first: after close(), a reload reads its first page and
 * waits until open(). Counts the first pages read (one per reload).
 */
function gatedReader(reader: ServingReader): { readonly reader: ServingReader; readonly firstPages: number; close(): void; open(): void } {
  let gate: Promise<void> | undefined;
  let release = (): void => {};
  let firstPages = 0;
  return {
    reader: {
      ...reader,
      catalog: async (after, limit) => {
        if (!after) firstPages++;
        if (gate && after) await gate;
        return reader.catalog(after, limit);
      },
    },
    get firstPages() {
      return firstPages;
    },
    close() {
      gate = new Promise<void>((resolve) => (release = resolve));
    },
    open() {
      release();
    },
  };
}
