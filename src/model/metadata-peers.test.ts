import { describe, expect, it } from 'vitest';
import { groupMeans, itemMetadata, metadataPeers, NewItemScores, priceBand, type ItemMetadata } from './metadata-peers.js';

const item = (category: string | null, brand?: string, price: number | null = null): ItemMetadata => ({ category, brand, price });

describe('metadataPeers', () => {
  // Known items 1..8: category a (1-5), b (6-8); brand x on 1, 2, 3, 6; prices 10-15 (band 3) on 1-3, 40 (band 5) on 4, 5.
  const known: (ItemMetadata | undefined)[] = [
    undefined,
    item('a', 'x', 10),
    item('a', 'x', 12),
    item('a', 'x', 15),
    item('a', undefined, 40),
    item('a', undefined, 40),
    item('b', 'x', 10),
    item('b'),
    item('b'),
  ];

  it('takes the most specific group with enough known items, backing off to coarser ones', () => {
    const peers = metadataPeers(known, [item('a', 'x', 11), item('a', 'x', 99), item('b', 'y', 10), item(null, 'x'), item(null), item('c'), item('a', 'x', 13)]);
    const groupOf = (i: number) => (peers.groupOf[i]! < 0 ? undefined : peers.groups[peers.groupOf[i]!]);
    expect(groupOf(0)).toEqual([1, 2, 3]); // same category, brand and price band
    expect(peers.levels[0]).toBe('category+brand+price');
    expect(groupOf(1)).toEqual([1, 2, 3]); // no known item in its price band: category and brand
    expect(peers.levels[1]).toBe('category+brand');
    expect(groupOf(2)).toEqual([6, 7, 8]); // brand y unknown, one b item in its band: the category
    expect(peers.levels[2]).toBe('category');
    expect(groupOf(3)).toEqual([1, 2, 3, 6]); // no category: the brand
    expect(peers.levels[3]).toBe('brand');
    expect([peers.groupOf[4], peers.groupOf[5]]).toEqual([-1, -1]); // no metadata, or a category no known item has
    expect(peers.levels[4]).toBeUndefined();
    expect(peers.groupOf[6]).toBe(peers.groupOf[0]); // one group per key, shared by the new items that use it
    expect(peers.groups).toHaveLength(4);
  });

  it('needs minPeers known items in a group', () => {
    expect(metadataPeers(known, [item('b', 'x', 10)], undefined, 2).levels[0]).toBe('category'); // b+x has one item
    expect(metadataPeers(known, [item('b')], undefined, 4).groupOf[0]).toBe(-1);
  });

  it('averages rows, and reads the brand property only when it is a string', () => {
    const rows = [Float32Array.from([0, 0]), Float32Array.from([1, 2]), Float32Array.from([3, 6])];
    expect(Array.from(groupMeans((i) => rows[i]!, 2, [[1, 2], [2]]))).toEqual([2, 4, 3, 6]);
    expect(itemMetadata({ category: 'a', price: 3, properties: { brand: 'x' } })).toEqual({ category: 'a', price: 3, brand: 'x' });
    expect(itemMetadata({ category: null, price: null, properties: { brand: 7 } }).brand).toBeUndefined();
    expect(itemMetadata({ category: null, price: null, properties: null }).brand).toBeUndefined();
    expect([priceBand(1), priceBand(3.99), priceBand(4), priceBand(0), priceBand(null)]).toEqual([0, 1, 2, undefined, undefined]);
  });

  it('scores a new item with its group\'s best, from every score or from a shortlist that holds one of them', () => {
    // Served groups: category, else brand. New items: category a (items 1-5), brand x without a category (1, 2, 3, 6), nothing.
    const items = NewItemScores.of(known, [item('a', 'y'), item(null, 'x'), item(null)]);
    expect([items.scored(0), items.scored(1), items.scored(2)]).toEqual([true, true, false]);
    expect([items.level(0), items.level(1), items.level(2)]).toEqual(['category', 'brand', undefined]);
    const scores = [0, 0.1, 0.5, 0.2, 0.9, 0.3, 0.4, 0.8, 0.7];
    expect(Array.from(items.fromScores(scores))).toEqual([Math.fround(0.9), Math.fround(0.5), -Infinity]);
    // A shortlist of items 4 and 7: category a's best is in it; brand x has no item there, so it is unknown.
    const fromShortlist = items.fromShortlist({ indices: [4, 7], scores: [0.9, 0.8] });
    expect(fromShortlist[0]).toBeCloseTo(0.9, 6);
    expect(Number.isNaN(fromShortlist[1])).toBe(true);
    expect(fromShortlist[2]).toBe(-Infinity);
  });
});
