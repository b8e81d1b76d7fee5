import { describe, expect, it } from 'vitest';
import { SHORTLIST } from '../model/served-model.js';
import { UserCache, type CachedUser } from './user-cache.js';

const WIDTH = 9;

/** A user whose every number derives from `seed`, so a row mixed up with another's shows. */
function user(seed: number, options: { version?: number | null; events?: number; purchases?: number; shortlist?: number; width?: number } = {}): CachedUser {
  const events = options.events ?? 1 + (seed % 7);
  const items = Int32Array.from({ length: events }, (_, i) => seed * 100 + i);
  const types = Int32Array.from({ length: events }, (_, i) => 1 + ((seed + i) % 3));
  const purchased = Int32Array.from({ length: options.purchases ?? seed % 3 }, (_, i) => seed * 100 + i);
  const version = options.version === undefined ? 4 : options.version;
  if (version === null) return { owner: { events, items, types, purchased }, version, encoded: undefined, state: undefined, shortlist: undefined };
  const encoded = { items: Array.from(items, (x) => x % 50), types: Array.from(types) };
  const length = options.shortlist ?? 5 + (seed % 4);
  return {
    owner: { events, items, types, purchased },
    version,
    encoded,
    state: { query: Float32Array.from({ length: options.width ?? WIDTH }, (_, i) => seed + i / 8), logNormaliser: seed / 3, items: encoded.items },
    shortlist: { indices: Int32Array.from({ length }, (_, i) => seed + i), scores: Float32Array.from({ length }, (_, i) => seed - i / 4) },
  };
}

function plain(entry: CachedUser | undefined): unknown {
  if (!entry) return entry;
  const { owner, state, shortlist } = entry;
  return {
    owner: { events: owner.events, items: [...owner.items], types: [...owner.types], purchased: [...owner.purchased] },
    version: entry.version,
    encoded: entry.encoded,
    state: state && { query: [...state.query], logNormaliser: state.logNormaliser, items: [...state.items] },
    shortlist: shortlist && { indices: [...shortlist.indices], scores: [...shortlist.scores] },
  };
}

describe('UserCache', () => {
  it('gives back what was cached: history, purchases, the model view, state, normaliser and shortlist', () => {
    const cache = new UserCache(10);
    const full = user(7, { purchases: 2, shortlist: SHORTLIST });
    const bare = user(8, { version: null });
    cache.set('u7', full);
    cache.set('u8', bare);
    expect(plain(cache.get('u7'))).toEqual(plain(full));
    expect(plain(cache.get('u8'))).toEqual(plain(bare));
    expect(cache.get('u8')?.encoded).toBeUndefined();
    expect(cache.get('u9')).toBeUndefined();
    expect(cache.size).toBe(2);
  });

  it('keeps a user cached without a state (no known item) apart from one with a state but no shortlist', () => {
    const cache = new UserCache(10);
    const { owner } = user(3);
    cache.set('empty', { owner, version: 2, encoded: { items: [], types: [] }, state: undefined, shortlist: undefined });
    const noShortlist = { ...user(4), shortlist: undefined };
    cache.set('state', noShortlist);
    expect(cache.get('empty')).toMatchObject({ version: 2, encoded: { items: [], types: [] }, state: undefined, shortlist: undefined });
    expect(plain(cache.get('state'))).toEqual(plain(noShortlist));
  });

  it('hands out copies: what a request holds does not change when its row is reused', () => {
    const cache = new UserCache(1);
    cache.set('a', user(1));
    const held = cache.get('a')!;
    const snapshot = plain(held);
    held.state!.query[0] = -1;
    expect(cache.get('a')!.state!.query[0]).toBe(1);
    held.state!.query[0] = 1;
    cache.set('b', user(2)); // evicts a; b takes its row
    expect(plain(held)).toEqual(snapshot);
    expect(cache.get('a')).toBeUndefined();
    expect(plain(cache.get('b'))).toEqual(plain(user(2)));
  });

  it('forgets the least recently used first and reuses rows across blocks without mixing users up', () => {
    const capacity = 1_500;
    const cache = new UserCache(capacity);
    for (let round = 0; round < 3; round++) {
      for (let u = 0; u < 2_000; u++) cache.set(`u${u}`, user(u + round * 10_000, { purchases: u % 2 }));
      expect(cache.size).toBe(capacity);
      for (let u = 0; u < 500; u++) expect(cache.get(`u${u}`)).toBeUndefined();
      for (let u = 500; u < 2_000; u += 37) expect(plain(cache.get(`u${u}`))).toEqual(plain(user(u + round * 10_000, { purchases: u % 2 })));
    }
    // Replacing a user and invalidating others frees their rows; new users fill them.
    for (let u = 500; u < 1_000; u++) cache.delete(`u${u}`);
    cache.set('u1999', user(42));
    for (let u = 0; u < 500; u++) cache.set(`new${u}`, user(50_000 + u));
    expect(cache.size).toBe(1_500);
    expect(plain(cache.get('u1999'))).toEqual(plain(user(42)));
    for (let u = 0; u < 500; u += 13) expect(plain(cache.get(`new${u}`))).toEqual(plain(user(50_000 + u)));
    for (let u = 1_000; u < 1_999; u += 41) expect(plain(cache.get(`u${u}`))).toEqual(plain(user(u + 20_000, { purchases: u % 2 })));
    // 7,000 sets, never more rows than users at once (+1: a set takes its row before the eviction returns one).
    expect(cache.allocatedRows).toBeLessThanOrEqual(capacity + 1);
  });

  it('keeps histories readable while users come and go: the arena compacts, and what a request holds stays as it was', () => {
    const cache = new UserCache(100);
    for (let u = 0; u < 100; u++) cache.set(`u${u}`, user(u, { events: 200, purchases: 20 }));
    const held = cache.get('u0')!;
    const snapshot = plain(held);
    for (let i = 0; i < 10_000; i++) {
      const u = (i * 37) % 100;
      cache.set(`u${u}`, user(u + 1_000 * (1 + (i % 5)), { events: 200, purchases: 20 }));
    }
    expect(plain(held)).toEqual(snapshot);
    for (let i = 9_900; i < 10_000; i++) {
      const u = (i * 37) % 100;
      expect(plain(cache.get(`u${u}`))).toEqual(plain(user(u + 1_000 * (1 + (i % 5)), { events: 200, purchases: 20 })));
    }
    // 10,000 histories of ~3.3 KB each were written; what stays is about the 100 that live, not all of them.
    expect(cache.bytes).toBeLessThan(4 * 2 ** 20);
  });

  it('reads a version without marking the user used', () => {
    const cache = new UserCache(2);
    cache.set('a', user(1, { version: 3 }));
    cache.set('b', user(2, { version: null }));
    expect(cache.versionOf('a')).toBe(3);
    expect(cache.versionOf('b')).toBeNull();
    expect(cache.versionOf('c')).toBeUndefined();
    cache.set('c', user(3)); // a is still the least recently used
    expect(cache.get('a')).toBeUndefined();
    expect(cache.get('b')).toBeDefined();
  });

  it('expires entries after the time to live from their last set', () => {
    let now = 5_000; // lru-cache reads a start time of 0 as never set
    const cache = new UserCache(10, 1_000, () => now);
    cache.set('a', user(1));
    now = 5_999;
    expect(cache.get('a')).toBeDefined();
    now = 6_001;
    expect(cache.get('a')).toBeUndefined();
    cache.set('b', user(2)); // the expired row is free again
    expect(plain(cache.get('b'))).toEqual(plain(user(2)));
  });

  it('leaves out a state of another width (a request that began under a replaced version) and keeps nothing at capacity 0', () => {
    const cache = new UserCache(10);
    cache.set('a', user(1));
    cache.set('b', user(2, { width: WIDTH + 4 }));
    expect(cache.get('b')).toBeUndefined();
    expect(plain(cache.get('a'))).toEqual(plain(user(1)));
    cache.clear();
    expect(cache.size).toBe(0);
    cache.set('b', user(2, { width: WIDTH + 4 })); // after clear, the next width is the cache's
    expect(plain(cache.get('b'))).toEqual(plain(user(2, { width: WIDTH + 4 })));
    const none = new UserCache(0);
    none.set('a', user(1));
    expect(none.get('a')).toBeUndefined();
    expect(none.size).toBe(0);
  });
});
