import { describe, expect, it } from 'vitest';
import { groupMeans, itemMetadata, metadataPeers, priceBand, type ItemMetadata } from './metadata-peers.js';

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
});
