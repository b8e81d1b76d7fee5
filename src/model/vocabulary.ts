/** The dense index is used while the largest id is at most this many times the vocabulary's size (plus DENSE_SLACK). */
const DENSE_SPREAD = 4;
const DENSE_SLACK = 1_024;

/**
 * Maps the store's internal item ids to the model's dense indices 1..size
 * (0 is padding). Saved with a model version: the API needs it to turn scores
 * back into items.
 */
export class ItemVocabulary {
  /**
   * Model index by internal id. The store's ids are autoincrement, so the vocabulary's ids are nearly
   * dense: an array indexed by id. A version's vocabulary is built on the event loop at every load; for
   * amazon-games' 23,715 items that took 4.9-12.9 ms with a Map and takes 0.3-3.8 ms this way, the
   * artifact's ids checked and copied included (docs/serving-performance.md, "The first second of an
   * activation"). Ids spread much wider than the vocabulary keep a Map.
   */
  private readonly dense: Int32Array | undefined;
  private readonly sparse: Map<number, number> | undefined;

  /** `itemIds[k]` is the internal id of model index k + 1. */
  constructor(readonly itemIds: Int32Array) {
    let min = 0;
    let max = 0;
    for (const id of itemIds) {
      if (id < min) min = id;
      if (id > max) max = id;
    }
    if (min >= 0 && max <= DENSE_SPREAD * itemIds.length + DENSE_SLACK) {
      this.dense = new Int32Array(max + 1);
      itemIds.forEach((id, k) => (this.dense![id] = k + 1));
    } else {
      this.sparse = new Map();
      itemIds.forEach((id, k) => this.sparse!.set(id, k + 1));
    }
  }

  /** The distinct ids of `items`, ascending. */
  static fromItems(items: ArrayLike<number>): ItemVocabulary {
    return new ItemVocabulary(Int32Array.from(new Set(Array.from(items))).sort());
  }

  get size(): number {
    return this.itemIds.length;
  }

  /** Model index of an internal id, 0 if unknown. */
  indexOf(itemId: number): number {
    // A typed array answers undefined for a fractional, negative or out-of-range id: unknown.
    return (this.dense ? this.dense[itemId] : this.sparse!.get(itemId)) ?? 0;
  }

  itemAt(index: number): number {
    return this.itemIds[index - 1]!;
  }

  /** Maps a whole array of internal ids (unknown → 0). */
  encode(items: ArrayLike<number>): Int32Array {
    const out = new Int32Array(items.length);
    for (let i = 0; i < items.length; i++) out[i] = this.indexOf(items[i]!);
    return out;
  }
}
