import { describe, expect, it, vi } from 'vitest';
import type { CatalogItem, History, ServingReader } from '../data/serving-reader.js';
import { CatalogCache } from './catalog-cache.js';
import type { ModelRegistry } from './model-registry.js';
import type { WarmedUser } from './inference-protocol.js';
import type { PooledModel } from './pooled-model.js';
import { Recommender } from './recommender.js';

/** A reader over two items whose history reads wait until the test releases them. */
function slowReader(): { reader: ServingReader; reads: number; release(history: History): void } {
  const waiting: ((history: History) => void)[] = [];
  const state = {
    reads: 0,
    release(history: History): void {
      waiting.shift()?.(history);
    },
    reader: {
      userId: async () => 1,
      userHistory: () => {
        state.reads++;
        return new Promise<History>((resolve) => waiting.push(resolve));
      },
      popularItems: async () => ({ items: [{ itemId: 1, count: 5 }, { itemId: 2, count: 3 }], windowEvents: 8 }),
      catalog: async () => [1, 2].map((id) => ({ id, externalId: `sku-${id}`, title: null, category: null, price: null, active: true, createdAt: 0, properties: null })),
      catalogItems: async () => [],
      catalogState: async () => ({ items: 2, changes: 0 }),
      eventTypes: async () => new Map([['view', 1], ['cart', 2], ['purchase', 3]]),
      ping: async () => {},
      close: () => {},
    } satisfies ServingReader,
  };
  return state;
}

/** A recommender with no model (the popular fallback answers) over a slow reader, caching up to 10 users. */
async function modelessRecommender(): Promise<{ slow: ReturnType<typeof slowReader>; recommender: Recommender }> {
  const slow = slowReader();
  const catalog = new CatalogCache(slow.reader);
  await catalog.reload();
  const models = { current: undefined } as unknown as ModelRegistry;
  const recommender = new Recommender(slow.reader, catalog, models, { popularFallback: true, popularWindowDays: 30, userCacheSize: 10, userCacheTtlSeconds: 0 });
  await recommender.start();
  return { slow, recommender };
}

describe('Recommender user cache', () => {
  it('does not cache a history read before an event that arrived while it was being computed', async () => {
    const { slow, recommender } = await modelessRecommender();

    const first = recommender.forUser('u', 2, { exclude: 'purchased' });
    await new Promise((r) => setImmediate(r));
    recommender.invalidateUsers(['u']); // a purchase of sku-1 is stored meanwhile
    slow.release({ items: Int32Array.from([2]), types: Int32Array.from([1]), timestamps: Float64Array.from([1]) });
    expect((await first).items.map((i) => i.item)).toEqual(['sku-1', 'sku-2']); // answered from what it read

    const second = recommender.forUser('u', 2, { exclude: 'purchased' });
    await new Promise((r) => setImmediate(r));
    expect(slow.reads).toBe(2); // read again, not served from a stale cache entry
    slow.release({ items: Int32Array.from([2, 1]), types: Int32Array.from([1, 3]), timestamps: Float64Array.from([1, 2]) });
    expect((await second).items.map((i) => i.item)).toEqual(['sku-2']);

    const third = await recommender.forUser('u', 2, { exclude: 'purchased' }); // now cached
    expect(slow.reads).toBe(2);
    expect(third.items.map((i) => i.item)).toEqual(['sku-2']);
  });

  it('forgets every cached user at once, and does not cache a history read before that', async () => {
    const { slow, recommender } = await modelessRecommender();
    const history = { items: Int32Array.from([2]), types: Int32Array.from([1]), timestamps: Float64Array.from([1]) };
    const cached = recommender.forUser('a', 2, { exclude: 'purchased' });
    await new Promise((r) => setImmediate(r));
    slow.release(history);
    await cached;
    expect(recommender.cachedUsers).toBe(1);

    const inFlight = recommender.forUser('b', 2, { exclude: 'purchased' });
    await new Promise((r) => setImmediate(r));
    recommender.forgetUsers(); // a replica's notices may have been missed
    expect(recommender.cachedUsers).toBe(0);
    slow.release(history);
    await inFlight;
    expect(recommender.cachedUsers).toBe(0); // read before the gap: not filed

    const after = recommender.forUser('a', 2, { exclude: 'purchased' });
    await new Promise((r) => setImmediate(r));
    expect(slow.reads).toBe(3); // read again
    slow.release(history);
    await after;
    expect(recommender.cachedUsers).toBe(1);
  });

  it('does not cache a user computed under a version that stopped serving while it was being computed', async () => {
    const slow = slowReader();
    const catalog = new CatalogCache(slow.reader);
    await catalog.reload();
    const models = { current: undefined } as { current: unknown };
    const recommender = new Recommender(slow.reader, catalog, models as unknown as ModelRegistry, { popularFallback: true, popularWindowDays: 30, userCacheSize: 10, userCacheTtlSeconds: 0 });
    await recommender.start();

    const first = recommender.forUser('u', 2, { exclude: 'none' }); // computed with no version serving
    await new Promise((r) => setImmediate(r));
    models.current = { version: 7 }; // a version takes over meanwhile (its cache is empty)
    slow.release({ items: Int32Array.from([2]), types: Int32Array.from([1]), timestamps: Float64Array.from([1]) });
    expect((await first).strategy).toBe('popular');
    expect(recommender.cachedUsers).toBe(0);

    models.current = undefined;
    const second = recommender.forUser('u', 2, { exclude: 'none' });
    await new Promise((r) => setImmediate(r));
    expect(slow.reads).toBe(2);
    slow.release({ items: Int32Array.from([2]), types: Int32Array.from([1]), timestamps: Float64Array.from([1]) });
    await second;
    expect(recommender.cachedUsers).toBe(1);
  });

  it('keeps users prepared for the next version apart until it serves, and drops those with newer events', async () => {
    const slow = slowReader();
    const catalog = new CatalogCache(slow.reader);
    await catalog.reload();
    const recommender = new Recommender(slow.reader, catalog, { current: undefined } as unknown as ModelRegistry, { popularFallback: true, popularWindowDays: 30, userCacheSize: 10, userCacheTtlSeconds: 0 });
    await recommender.start();
    const next = { version: 2 } as unknown as PooledModel;
    const warmed = (externalId: string): WarmedUser => ({ externalId, items: Int32Array.from([1]), types: Int32Array.from([1]), encoded: { items: [1], types: [1] }, representation: undefined });
    const readAt = recommender.currentEpoch;
    expect(recommender.primeWarmed(next, [warmed('a')], readAt)).toBe(0); // nothing is prepared for version 2 yet
    recommender.prepareNext(next);
    expect(recommender.primeWarmed(next, [warmed('a'), warmed('b'), warmed('c')], readAt)).toBe(3);
    expect(recommender.preparedUsers).toBe(3);
    expect(recommender.cachedUsers).toBe(0); // the serving version's cache is untouched meanwhile
    recommender.invalidateUsers(['b']); // an event for b before the switch
    expect(recommender.primeWarmed(next, [warmed('b')], readAt)).toBe(0); // a chunk read before that event does not bring b back
    recommender.adopt(next);
    expect(recommender.cachedUsers).toBe(2);
    expect(recommender.preparedUsers).toBe(0);
    // The next activation prepares in a cache of its own (the spare built ahead, or a new one), not the serving one.
    const later = { version: 4 } as unknown as PooledModel;
    recommender.prepareNext(later);
    expect(recommender.preparedUsers).toBe(0);
    expect(recommender.primeWarmed(later, [warmed('d')], recommender.currentEpoch)).toBe(1);
    expect(recommender.cachedUsers).toBe(2);
    recommender.dropNext(later);
    // Another version taking over finds nothing prepared for it: the cache starts empty.
    recommender.adopt({ version: 3 } as unknown as PooledModel);
    expect(recommender.cachedUsers).toBe(0);
  });
});

/** An item of scoredShop's catalogue. */
type ShopItem = { id: number; category?: string | null; properties: Record<string, unknown> | null };

/**
 * A model over 60 items whose scores fall with the item id (item i scores -0.1 i, item 1 best), with a
 * 10-item shortlist, that counts how often the whole catalogue is scored, over a catalogue of the given
 * items (ids above 60 are items the model never saw). `items` may grow after (items an event batch
 * created, say): reloads and additions read it as it is then.
 */
async function scoredShop(items: readonly ShopItem[]): Promise<{ recommender: Recommender; catalog: CatalogCache; wholeScorings: () => number }> {
  const asCatalogItem = ({ id, category, properties }: ShopItem): CatalogItem => ({ id, externalId: `sku-${id}`, title: null, category: category ?? null, price: null, active: true, createdAt: 0, properties: properties as CatalogItem['properties'] });
  const reader: ServingReader = {
    userId: async () => 1,
    userHistory: async () => ({ items: Int32Array.from([1]), types: Int32Array.from([1]), timestamps: Float64Array.from([1]) }),
    popularItems: async () => ({ items: [], windowEvents: 0 }),
    catalog: async (after = 0) => items.filter(({ id }) => id > after).map(asCatalogItem),
    catalogItems: async (externalIds) => items.filter(({ id }) => externalIds.includes(`sku-${id}`)).map(asCatalogItem),
    catalogState: async () => ({ items: items.length, changes: 0 }),
    eventTypes: async () => new Map([['view', 1]]),
    ping: async () => {},
    close: () => {},
  };
  const catalog = new CatalogCache(reader);
  await catalog.reload();
  const scores = Float32Array.from({ length: 61 }, (_, i) => (i === 0 ? -1e9 : -0.1 * i));
  let scorings = 0;
  const model = {
    version: 1,
    numItems: 60,
    vocabulary: { indexOf: (id: number) => (id <= 60 ? id : 0), itemAt: (index: number) => index },
    encode: (history: ArrayLike<number>, types: ArrayLike<number>) => ({ items: Array.from(history), types: Array.from(types) }),
    represent: async () => ({ state: { query: new Float32Array(1), logNormaliser: 0, items: [1] }, shortlist: { indices: Int32Array.from({ length: 10 }, (_, i) => i + 1), scores: scores.slice(1, 11) } }),
    scores: async () => {
      scorings++;
      return scores;
    },
    acquire() {
      return this;
    },
    release() {},
  };
  const recommender = new Recommender(reader, catalog, { current: model } as unknown as ModelRegistry, { popularFallback: true, popularWindowDays: 30, userCacheSize: 0, userCacheTtlSeconds: 0 });
  await recommender.start();
  return { recommender, catalog, wholeScorings: () => scorings };
}

describe('Recommender boosts', () => {
  /** The boost answers from the shortlist only when no item outside it could pass the k-th, whatever its boost. */
  const boostedShop = () => scoredShop(Array.from({ length: 60 }, (_, i) => ({ id: i + 1, properties: { tags: i + 1 === 40 ? ['promo'] : [], tier: i + 1 <= 10 ? 'top' : 'rest' } })));

  it('ranks by probability × boost from the shortlist when that is provably the answer, from every item otherwise', async () => {
    const { recommender, catalog, wholeScorings } = await boostedShop();
    // Item 40 scores 3.0 below item 1; a factor of 1.01 cannot lift it past the 5th (0.5 below): the shortlist answers.
    const small = await recommender.forUser('u', 5, { exclude: 'none', boosts: catalog.boosts('1.01 IF tags = "promo"') });
    expect(small.items.map((i) => i.item)).toEqual(['sku-1', 'sku-2', 'sku-3', 'sku-4', 'sku-5']);
    expect(small.items.every((i) => i.boost === 1)).toBe(true);
    expect(wholeScorings()).toBe(0);
    // × 100 (+4.6 in score) puts it first, although the shortlist does not hold it: the whole catalogue is scored.
    const large = await recommender.forUser('u', 5, { exclude: 'none', boosts: catalog.boosts('100 IF tags = "promo"') });
    expect(large.items.map((i) => i.item)).toEqual(['sku-40', 'sku-1', 'sku-2', 'sku-3', 'sku-4']);
    expect(large.items[0]!.boost).toBe(100);
    expect(large.items[0]!.probability).toBeCloseTo(Math.exp(-4), 6); // the model's probability, unboosted
    expect(wholeScorings()).toBe(1);
    // A filter that leaves it out wins over any boost.
    const filtered = await recommender.forUser('u', 5, { exclude: 'none', where: catalog.filter('NOT tags = "promo"'), boosts: catalog.boosts('100 IF tags = "promo"') });
    expect(filtered.items.map((i) => i.item)).toEqual(['sku-1', 'sku-2', 'sku-3', 'sku-4', 'sku-5']);
  });

  it('caps items per group greedily in rank order, past the shortlist when it cannot fill k', async () => {
    const { recommender, catalog, wholeScorings } = await boostedShop();
    // Every shortlisted item is in tier "top": one of them, then the best of "rest" from the whole catalogue.
    const capped = await recommender.forUser('u', 2, { exclude: 'none', maxPer: { group: catalog.group('tier'), max: 1 } });
    expect(capped.items.map((i) => i.item)).toEqual(['sku-1', 'sku-11']);
    expect(wholeScorings()).toBe(1);
    // A cap the shortlist can satisfy answers from it.
    const two = await recommender.forUser('u', 2, { exclude: 'none', maxPer: { group: catalog.group('tier'), max: 2 } });
    expect(two.items.map((i) => i.item)).toEqual(['sku-1', 'sku-2']);
    expect(wholeScorings()).toBe(1);
    // With a boost: the promo item first, then the cap over the rest.
    const both = await recommender.forUser('u', 3, { exclude: 'none', boosts: catalog.boosts('100 IF tags = "promo"'), maxPer: { group: catalog.group('tier'), max: 1 } });
    expect(both.items.map((i) => i.item)).toEqual(['sku-40', 'sku-1']); // only two tiers: two items
  });
});

describe('Recommender new items', () => {
  /**
   * The catalogue also lists items 61-63, which the model never saw: sku-62 shares category x with items
   * 1, 2 and 4; sku-61 (no category) brand q with items 12, 13 and 14, none of them shortlisted; sku-63 has
   * no metadata.
   */
  const shopWithNewItems = () =>
    scoredShop(
      Array.from({ length: 63 }, (_, i) => {
        const id = i + 1;
        if (id === 61) return { id, properties: { brand: 'q' } };
        if (id === 62) return { id, category: 'x', properties: null };
        if (id === 63) return { id, properties: null };
        return { id, category: [1, 2, 4].includes(id) ? 'x' : null, properties: [12, 13, 14].includes(id) ? { brand: 'q' } : null };
      }),
    );

  it('ranks a new item just after the best known item of its category, marks it, and re-ranks and pins it the same way', async () => {
    const { recommender, wholeScorings } = await shopWithNewItems();
    const top = await recommender.forUser('u', 5, { exclude: 'none' });
    // sku-62 scores what item 1 scores (-0.1), after it: from the shortlist, which holds item 1.
    expect(top.items.map((i) => i.item)).toEqual(['sku-1', 'sku-62', 'sku-2', 'sku-3', 'sku-4']);
    expect(top.items[1]!.score).toBeCloseTo(-0.1, 6);
    expect(top.items[1]!.probability).toBeCloseTo(Math.exp(-0.1), 6);
    expect(top.items[1]!.newItem).toEqual({ level: 'category' });
    expect(top.items[0]!.newItem).toBeUndefined();
    expect(wholeScorings()).toBe(0);
    // Without metadata an item has no score: never recommended, even when it is the only one asked for.
    expect((await recommender.forUser('u', 3, { exclude: 'none', includeItems: ['sku-63'] })).items).toEqual([]);
    expect((await recommender.forUser('u', 3, { exclude: 'none', includeItems: ['sku-61', 'sku-63'] })).items.map((i) => [i.item, i.newItem?.level])).toEqual([['sku-61', 'brand']]);
    // Re-ranking a shop's candidates: the same scores; one without metadata is dropped as not in the model.
    const ranked = await recommender.rank({ user: 'u' }, ['sku-3', 'sku-63', 'sku-62'], { exclude: 'none' });
    expect(ranked.items.map((i) => [i.item, i.newItem?.level])).toEqual([['sku-62', 'category'], ['sku-3', undefined]]);
    expect(ranked.items[0]!.score).toBeCloseTo(-0.1, 6);
    expect(ranked.dropped).toEqual([{ item: 'sku-63', reason: 'not_in_model' }]);
    // Pinned, it is described the same way.
    const pinned = await recommender.forUser('u', 2, { exclude: 'none', pins: [{ item: 'sku-61', slot: 1 }, { item: 'sku-63', slot: 2 }] });
    expect(pinned.items.map((i) => [i.item, i.pin?.scored, i.newItem?.level])).toEqual([['sku-61', true, 'brand'], ['sku-63', false, undefined]]);
    expect(pinned.items[0]!.score).toBeCloseTo(-1.2, 6);
  });

  it('recommends an item an event batch created from the next view on, at most a second later; after a reload at once', async () => {
    const items: ShopItem[] = Array.from({ length: 60 }, (_, i) => ({ id: i + 1, category: [1, 2, 4].includes(i + 1) ? 'x' : null, properties: null }));
    const { recommender, catalog } = await scoredShop(items);
    const real = performance.now.bind(performance);
    let skew = 0;
    const clock = vi.spyOn(performance, 'now').mockImplementation(() => real() + skew);
    try {
      const top = async (k: number) => (await recommender.forUser('u', k, { exclude: 'none' })).items.map((i) => i.item);
      expect(await top(3)).toEqual(['sku-1', 'sku-2', 'sku-3']);
      items.push({ id: 70, category: 'x', properties: null });
      await catalog.addItems(['sku-70']);
      expect(catalog.byExternalId('sku-70')).toBeDefined(); // known to lookups at once
      // The view built a moment ago stands: rebuilding it for every batch that adds items would read the whole catalogue each time.
      expect(await top(3)).toEqual(['sku-1', 'sku-2', 'sku-3']);
      skew += 1_001;
      expect(await top(3)).toEqual(['sku-1', 'sku-70', 'sku-2']);
      // A reload may have changed any item: the next request builds the view again.
      items.push({ id: 71, category: 'x', properties: null });
      await catalog.reload();
      expect((await top(4)).sort()).toEqual(['sku-1', 'sku-2', 'sku-70', 'sku-71']);
    } finally {
      clock.mockRestore();
    }
  });

  it('never lets a new item below the shortlist take the place of a known item outside it', async () => {
    const { recommender, wholeScorings } = await shopWithNewItems();
    // With sku-1 left out the shortlist still fills 10 (sku-62 from its category's item 1).
    const ten = await recommender.forUser('u', 10, { exclude: 'none', excludeItems: ['sku-1'] });
    expect(ten.items.map((i) => i.item)).toEqual(['sku-62', 'sku-2', 'sku-3', 'sku-4', 'sku-5', 'sku-6', 'sku-7', 'sku-8', 'sku-9', 'sku-10']);
    expect(wholeScorings()).toBe(0);
    // Without sku-62 it cannot: sku-61's group (items 12-14) has no shortlisted item, so its score (-1.2) is
    // unknown there; the whole catalogue decides, and item 11 (-1.1) comes before it.
    const eleven = await recommender.forUser('u', 10, { exclude: 'none', excludeItems: ['sku-1', 'sku-62'] });
    expect(eleven.items.map((i) => i.item).slice(-2)).toEqual(['sku-10', 'sku-11']);
    expect(wholeScorings()).toBe(1);
    const more = await recommender.forUser('u', 12, { exclude: 'none', excludeItems: ['sku-1', 'sku-62'] });
    expect(more.items.map((i) => [i.item, i.newItem?.level]).slice(-3)).toEqual([['sku-11', undefined], ['sku-12', undefined], ['sku-61', 'brand']]);
    // The same through the cap path (a cap that never binds).
    const capped = await recommender.forUser('u', 2, { exclude: 'none', excludeItems: ['sku-1', 'sku-2', 'sku-3', 'sku-4', 'sku-5', 'sku-6', 'sku-7', 'sku-8', 'sku-9', 'sku-62'], maxPer: { group: { key: () => undefined } as never, max: 1 } });
    expect(capped.items.map((i) => i.item)).toEqual(['sku-10', 'sku-11']);
  });
});
