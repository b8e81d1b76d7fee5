/**
 * Scores for items a model version has never seen (a new SKU, listed after
 * the version was trained), from the known items that share their metadata:
 * a group of at least MIN_PEERS known items with the same category (or, for
 * an item without one, brand; finer groups with brand and price band exist
 * for measurement). A new item scores what the best item of its group scores
 * for this shopper, so it ranks just after that item, until the next
 * training gives it a row of its own.
 *
 * Measured on a generated shop with launched items (bench/new-items.ts,
 * docs/merchandising.md#new-items): the group's mean embedding (mean of its
 * rows, whose score is the mean of the group's scores) put a new item in the
 * top 20 of its later buyers 1.8 % of the time, below a random slot (4.4 %);
 * the best item of the category 44 %.
 */

/** What a new item's embedding is chosen from. `brand` is the item's `brand` property, when a string. */
export interface ItemMetadata {
  readonly category: string | null;
  readonly brand: string | undefined;
  readonly price: number | null;
}

/** Every group a new item can take its peers from, from the most specific to the coarsest. */
export const METADATA_LEVELS = ['category+brand+price', 'category+brand', 'category+price', 'category', 'brand'] as const;
export type MetadataLevel = (typeof METADATA_LEVELS)[number];

/** The groups serving uses, in order (chosen on the measurement above: the finer ones placed new items worse). */
export const SERVED_LEVELS: readonly MetadataLevel[] = ['category', 'brand'];

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

/**
 * The new items of a catalogue for one version, with their groups: turns the
 * version's scores of its own items into the new items' scores.
 */
export class NewItemScores {
  /** Per known item (model index): the groups it belongs to, for reading a shortlist. */
  private readonly groupsOf = new Map<number, number[]>();

  private constructor(
    private readonly peers: MetadataPeers,
    readonly count: number,
  ) {
    peers.groups.forEach((members, g) => {
      for (const index of members) (this.groupsOf.get(index) ?? this.groupsOf.set(index, []).get(index)!).push(g);
    });
  }

  /** `known[index]`: the metadata of model index `index` (undefined for padding and unlisted items); `fresh`: the new items. */
  static of(known: readonly (ItemMetadata | undefined)[], fresh: readonly ItemMetadata[], levels: readonly MetadataLevel[] = SERVED_LEVELS): NewItemScores {
    return new NewItemScores(metadataPeers(known, fresh, levels), fresh.length);
  }

  /** Whether new item i has a group (else it is never scored). */
  scored(i: number): boolean {
    return this.peers.groupOf[i]! >= 0;
  }

  /** The group new item i took its peers from. */
  level(i: number): MetadataLevel | undefined {
    return this.peers.levels[i];
  }

  /** Each new item's score from the version's scores of its own items (index = model index): its group's best; -Infinity without a group. */
  fromScores(scores: ArrayLike<number>): Float32Array {
    const best = this.peers.groups.map((members) => {
      let max = -Infinity;
      for (const index of members) if (scores[index]! > max) max = scores[index]!;
      return max;
    });
    return this.spread(best);
  }

  /**
   * The same from a shortlist (the version's best items, best first): exact for a new item whose group
   * has an item in it; NaN for one whose group has none, which then scores at most the shortlist's lowest.
   */
  fromShortlist(shortlist: { readonly indices: ArrayLike<number>; readonly scores: ArrayLike<number> }): Float32Array {
    const best = new Array<number>(this.peers.groups.length).fill(NaN);
    for (let j = 0; j < shortlist.indices.length; j++) {
      for (const g of this.groupsOf.get(shortlist.indices[j]!) ?? []) if (!(best[g]! >= shortlist.scores[j]!)) best[g] = shortlist.scores[j]!;
    }
    return this.spread(best);
  }

  private spread(best: readonly number[]): Float32Array {
    const out = new Float32Array(this.count);
    for (let i = 0; i < this.count; i++) out[i] = this.peers.groupOf[i]! < 0 ? -Infinity : best[this.peers.groupOf[i]!]!;
    return out;
  }
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
