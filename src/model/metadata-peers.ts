/**
 * Embeddings for items the model has never seen (a new SKU, listed after the
 * version was trained): each takes the mean of the output-table rows of the
 * known items that share its metadata — category, brand and price band —
 * backing off to coarser groups when a group is too small. Its score is then
 * the query's dot product with that mean row, which is the mean of its
 * peers' scores: a new item ranks where items like it rank for this shopper,
 * until the next training gives it a row of its own.
 */

/** What a new item's embedding is chosen from. `brand` is the item's `brand` property, when a string. */
export interface ItemMetadata {
  readonly category: string | null;
  readonly brand: string | undefined;
  readonly price: number | null;
}

/** From the most specific group to the coarsest; the first with enough known items wins. */
export const METADATA_LEVELS = ['category+brand+price', 'category+brand', 'category+price', 'category', 'brand'] as const;
export type MetadataLevel = (typeof METADATA_LEVELS)[number];

/** A group needs this many known items to stand for a new one (fewer: one item's quirks, not the group's). */
export const MIN_PEERS = 3;

/** Price bands double: [1, 2), [2, 4), [4, 8) … (an item without a positive price has none). */
export function priceBand(price: number | null): number | undefined {
  return price !== null && price > 0 && Number.isFinite(price) ? Math.floor(Math.log2(price)) : undefined;
}

/** The item's key at a level, or undefined when it lacks what the level needs. */
function keyAt(level: MetadataLevel, item: ItemMetadata): string | undefined {
  const band = priceBand(item.price);
  const { category, brand } = item;
  switch (level) {
    case 'category+brand+price':
      return category !== null && brand !== undefined && band !== undefined ? `cbp\u0000${category}\u0000${brand}\u0000${band}` : undefined;
    case 'category+brand':
      return category !== null && brand !== undefined ? `cb\u0000${category}\u0000${brand}` : undefined;
    case 'category+price':
      return category !== null && band !== undefined ? `cp\u0000${category}\u0000${band}` : undefined;
    case 'category':
      return category !== null ? `c\u0000${category}` : undefined;
    case 'brand':
      return brand !== undefined ? `b\u0000${brand}` : undefined;
  }
}

export interface MetadataPeers {
  /** Each group's known items (model indices), the groups at least one new item uses. */
  readonly groups: readonly (readonly number[])[];
  /** Per new item: its group in `groups`, or -1 when no group is big enough (it stays unrecommended). */
  readonly groupOf: Int32Array;
  /** Per new item: the level its group is at (undefined with no group). */
  readonly levels: readonly (MetadataLevel | undefined)[];
}

/**
 * Chooses each new item's peers among the known ones. `known[index]` is the
 * metadata of model index `index` (index 0, padding, and items the catalogue
 * no longer lists are undefined); `fresh` lists the new items.
 */
export function metadataPeers(known: readonly (ItemMetadata | undefined)[], fresh: readonly ItemMetadata[], levels: readonly MetadataLevel[] = METADATA_LEVELS, minPeers = MIN_PEERS): MetadataPeers {
  const members = new Map<string, number[]>();
  for (let index = 1; index < known.length; index++) {
    const item = known[index];
    if (!item) continue;
    for (const level of levels) {
      const key = keyAt(level, item);
      if (key === undefined) continue;
      let list = members.get(key);
      if (!list) members.set(key, (list = []));
      list.push(index);
    }
  }
  const used = new Map<string, number>();
  const groups: number[][] = [];
  const groupOf = new Int32Array(fresh.length).fill(-1);
  const chosen: (MetadataLevel | undefined)[] = new Array(fresh.length).fill(undefined);
  fresh.forEach((item, i) => {
    for (const level of levels) {
      const key = keyAt(level, item);
      const peers = key === undefined ? undefined : members.get(key);
      if (!peers || peers.length < minPeers) continue;
      let group = used.get(key!);
      if (group === undefined) {
        group = groups.push(peers) - 1;
        used.set(key!, group);
      }
      groupOf[i] = group;
      chosen[i] = level;
      return;
    }
  });
  return { groups, groupOf, levels: chosen };
}

/** The mean row of each group of a [rows, cols] table (row r at r * stride). */
export function groupMeans(row: (index: number) => Float32Array, cols: number, groups: readonly (readonly number[])[]): Float32Array {
  const out = new Float32Array(groups.length * cols);
  groups.forEach((members, g) => {
    const mean = out.subarray(g * cols, (g + 1) * cols);
    for (const index of members) {
      const values = row(index);
      for (let c = 0; c < cols; c++) mean[c]! += values[c]!;
    }
    for (let c = 0; c < cols; c++) mean[c]! /= members.length;
  });
  return out;
}

/** The metadata of a catalogue item: its category, price and `brand` property (a string, else none). */
export function itemMetadata(item: { readonly category: string | null; readonly price: number | null; readonly properties: unknown }): ItemMetadata {
  const brand = item.properties !== null && typeof item.properties === 'object' ? (item.properties as Record<string, unknown>).brand : undefined;
  return { category: item.category, price: item.price, brand: typeof brand === 'string' ? brand : undefined };
}
