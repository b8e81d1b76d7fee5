/**
 * Maps the store's internal item ids to the model's dense indices 1..size
 * (0 is padding). Saved with a model version: the API needs it to turn scores
 * back into items.
 */
export class ItemVocabulary {
  private readonly index: Map<number, number>;

  /** `itemIds[k]` is the internal id of model index k + 1. */
  constructor(readonly itemIds: Int32Array) {
    this.index = new Map();
    itemIds.forEach((id, k) => this.index.set(id, k + 1));
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
    return this.index.get(itemId) ?? 0;
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
