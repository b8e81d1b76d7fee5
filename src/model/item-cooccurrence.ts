import type { ItemNeighbours } from './cooccurrence-blend.js';

/** Neighbours kept per item, by the co-occurrence term and the item-knn baseline (on amazon-games, 200 and all ~244 scored the same as 100 within 0.002). */
export const ITEM_NEIGHBOURS = 100;

/** Histories as CSR over model item indices: sequence s is items[offsets[s] .. offsets[s + 1]) (EncodedSequences has this shape). */
export interface ItemHistories {
  readonly offsets: Int32Array;
  readonly items: Int32Array;
}

/** How many leading events of each sequence count (LeaveOneOutSplit has this shape: the training events). */
export interface CountedEvents {
  readonly trainLength: Int32Array;
}

/**
 * Item co-occurrence over the training events: how many histories hold both
 * items (each history counted once per pair, whatever the order or the
 * repeats), as a symmetric sparse matrix in CSR form without its diagonal.
 * Rows and columns are model item indices 0..numItems (row 0, padding, is
 * empty). Held-out events never count: only each sequence's first
 * split.trainLength[s] events.
 */
export interface ItemCooccurrence {
  readonly numItems: number;
  /** [numItems + 2]: row i's entries are offsets[i] .. offsets[i + 1] - 1. */
  readonly offsets: Int32Array;
  /** Column (the other item) of each entry, ascending within a row. */
  readonly columns: Int32Array;
  /** Histories holding both items. */
  readonly counts: Float32Array;
  /** [numItems + 1]: histories holding each item. */
  readonly histories: Int32Array;
}

export function itemCooccurrence(data: ItemHistories, split: CountedEvents, numItems: number): ItemCooccurrence {
  // Each history's distinct training items, as CSR.
  const historyOffsets = new Int32Array(split.trainLength.length + 1);
  const historyItems: number[] = [];
  const seen = new Int32Array(numItems + 1).fill(-1);
  for (let s = 0; s < split.trainLength.length; s++) {
    const begin = data.offsets[s]!;
    for (let k = begin; k < begin + split.trainLength[s]!; k++) {
      const item = data.items[k]!;
      if (seen[item] !== s) {
        seen[item] = s;
        historyItems.push(item);
      }
    }
    historyOffsets[s + 1] = historyItems.length;
  }
  // The histories of each item (item → history CSR).
  const itemOffsets = new Int32Array(numItems + 2);
  for (const item of historyItems) itemOffsets[item + 1]!++;
  for (let i = 0; i <= numItems; i++) itemOffsets[i + 1]! += itemOffsets[i]!;
  const fill = itemOffsets.slice(0, numItems + 1);
  const itemHistories = new Int32Array(historyItems.length);
  for (let s = 0; s + 1 < historyOffsets.length; s++) {
    for (let k = historyOffsets[s]!; k < historyOffsets[s + 1]!; k++) itemHistories[fill[historyItems[k]!]!++] = s;
  }
  // Row by row: a dense accumulator and the list of columns it touched.
  const offsets = new Int32Array(numItems + 2);
  let columns = new Int32Array(1 << 16);
  let counts = new Float32Array(1 << 16);
  let size = 0;
  const accumulator = new Float64Array(numItems + 1);
  const touched: number[] = [];
  for (let i = 0; i <= numItems; i++) {
    for (let h = itemOffsets[i]!; h < itemOffsets[i + 1]!; h++) {
      const s = itemHistories[h]!;
      for (let k = historyOffsets[s]!; k < historyOffsets[s + 1]!; k++) {
        const j = historyItems[k]!;
        if (j === i) continue;
        if (accumulator[j] === 0) touched.push(j);
        accumulator[j]!++;
      }
    }
    if (size + touched.length > columns.length) {
      const capacity = Math.max(2 * columns.length, size + touched.length);
      columns = grow(columns, new Int32Array(capacity));
      counts = grow(counts, new Float32Array(capacity));
    }
    touched.sort((a, b) => a - b);
    for (const j of touched) {
      columns[size] = j;
      counts[size++] = accumulator[j]!;
      accumulator[j] = 0;
    }
    touched.length = 0;
    offsets[i + 1] = size;
  }
  const histories = new Int32Array(numItems + 1);
  for (let i = 0; i <= numItems; i++) histories[i] = itemOffsets[i + 1]! - itemOffsets[i]!;
  return { numItems, offsets, columns: columns.slice(0, size), counts: counts.slice(0, size), histories };
}

/**
 * Each item's `count` strongest neighbours by cosine, c_ij / sqrt(n_i n_j),
 * from co-occurrence counts c (histories holding both) and item counts n
 * (histories holding the item), ties to the lower index.
 */
export function strongestNeighbours(cooccurrence: ItemCooccurrence, count: number): ItemNeighbours {
  const itemHistories = cooccurrence.histories;
  const rows = cooccurrence.numItems + 1;
  const offsets = new Int32Array(rows + 1);
  const kept: { items: number[]; weights: number[] } = { items: [], weights: [] };
  const order: number[] = [];
  const cosine: number[] = [];
  for (let i = 0; i < rows; i++) {
    const from = cooccurrence.offsets[i]!;
    const to = cooccurrence.offsets[i + 1]!;
    order.length = 0;
    cosine.length = 0;
    for (let k = from; k < to; k++) {
      order.push(k - from);
      const j = cooccurrence.columns[k]!;
      cosine.push(cooccurrence.counts[k]! / Math.sqrt(Math.max(1, itemHistories[i]!) * Math.max(1, itemHistories[j]!)));
    }
    if (order.length > count) order.sort((a, b) => cosine[b]! - cosine[a]! || a - b).length = count;
    order.sort((a, b) => a - b); // stored by item, as the matrix was
    for (const k of order) {
      kept.items.push(cooccurrence.columns[from + k]!);
      kept.weights.push(cosine[k]!);
    }
    offsets[i + 1] = kept.items.length;
  }
  return { numItems: cooccurrence.numItems, offsets, items: Int32Array.from(kept.items), weights: Float32Array.from(kept.weights) };
}

function grow<T extends Int32Array | Float32Array>(from: T, to: T): T {
  to.set(from);
  return to;
}
