import { describe, expect, it } from 'vitest';
import { leaveOneOutSplit } from '../data/leave-one-out-split.js';
import { itemCooccurrence, strongestNeighbours } from './item-cooccurrence.js';

/** Sequences as CSR (types all 1). */
function sequences(lists: number[][]) {
  const offsets = [0];
  for (const l of lists) offsets.push(offsets[offsets.length - 1]! + l.length);
  const items = lists.flat();
  return { offsets: Int32Array.from(offsets), items: Int32Array.from(items), types: new Uint8Array(items.length).fill(1) };
}

/** Row i of the matrix as {column: count}. */
function row(c: ReturnType<typeof itemCooccurrence>, i: number): Record<number, number> {
  const out: Record<number, number> = {};
  for (let k = c.offsets[i]!; k < c.offsets[i + 1]!; k++) out[c.columns[k]!] = c.counts[k]!;
  return out;
}

describe('itemCooccurrence', () => {
  it('counts the training histories holding both items, once per history, held-out events left out', () => {
    // Sequence 0 (6 events) trains on 1 2 1 3 (2 and 4 held out); sequence 1 (3 events, too short to evaluate) trains on all.
    const data = sequences([[1, 2, 1, 3, 4, 4], [2, 3, 5]]);
    const c = itemCooccurrence(data, leaveOneOutSplit(data.offsets), 5);
    expect(row(c, 0)).toEqual({});
    expect(row(c, 1)).toEqual({ 2: 1, 3: 1 }); // item 1 twice in sequence 0, still one history
    expect(row(c, 2)).toEqual({ 1: 1, 3: 2, 5: 1 });
    expect(row(c, 3)).toEqual({ 1: 1, 2: 2, 5: 1 });
    expect(row(c, 4)).toEqual({}); // only ever held out
    expect(row(c, 5)).toEqual({ 2: 1, 3: 1 });
    // Symmetric, columns ascending, no diagonal.
    for (let i = 0; i <= 5; i++) {
      const r = row(c, i);
      for (const [j, v] of Object.entries(r)) expect(row(c, Number(j))[i]).toBe(v);
      const columns = Object.keys(r).map(Number);
      expect(columns).toEqual([...columns].sort((a, b) => a - b));
      expect(r[i]).toBeUndefined();
    }
  });
});

describe('strongestNeighbours', () => {
  it('keeps each item\'s strongest neighbours by cosine (ties to the lower item), stored by item', () => {
    // Items 1..4; counts of histories holding both, and histories per item.
    const cooccurrence = {
      numItems: 4,
      offsets: Int32Array.from([0, 0, 3, 4, 5, 6]),
      columns: Int32Array.from([2, 3, 4, /**/ 1, /**/ 1, /**/ 1]),
      counts: Float32Array.from([2, 2, 1, /**/ 2, /**/ 2, /**/ 1]),
      histories: Int32Array.from([0, 4, 1, 4, 1]),
    };
    const kept = strongestNeighbours(cooccurrence, 2);
    const row = (i: number): [number, number][] => Array.from(kept.items.subarray(kept.offsets[i]!, kept.offsets[i + 1]!), (item, k) => [item, kept.weights[kept.offsets[i]! + k]!]);
    // Item 1: cos(1,2) = 2/√4 = 1, cos(1,3) = 2/√16 = 0.5, cos(1,4) = 1/√4 = 0.5 → 2 and 3 (3 beats 4 on the tie).
    expect(row(1)).toEqual([[2, 1], [3, 0.5]]);
    expect(row(2)).toEqual([[1, 1]]);
    expect(row(4)).toEqual([[1, 0.5]]);
    expect(row(0)).toEqual([]);
  });
});
