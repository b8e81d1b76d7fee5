import { describe, expect, it } from 'vitest';
import { addTerm, CooccurrenceBlend, type ItemNeighbours } from './cooccurrence-blend.js';

// Items 1..5. Neighbours: 1 → {2: 0.5, 3: 0.25}; 2 → {1: 0.5}; 4 → {3: 0.8}; 3 and 5 none.
const neighbours: ItemNeighbours = {
  numItems: 5,
  offsets: Int32Array.from([0, 0, 2, 3, 3, 4, 4]),
  items: Int32Array.from([2, 3, 1, 3]),
  weights: Float32Array.from([0.5, 0.25, 0.5, 0.8]),
};

describe('CooccurrenceBlend', () => {
  it('sums each neighbour\'s cosine over the history, the newest event weighing 1 and each older one decay times less', () => {
    const blend = new CooccurrenceBlend(neighbours, { weight: 2, scale: 10, decay: 0.5 });
    // History oldest first: 4 (age 2), 1 (age 1), 2 (age 0).
    const sums = blend.similaritySums([4, 1, 2]);
    const byItem = Object.fromEntries(Array.from(sums.items, (item, i) => [item, sums.values[i]]));
    expect(byItem[1]).toBeCloseTo(0.5, 6); // from 2, age 0
    expect(byItem[2]).toBeCloseTo(0.5 * 0.5, 6); // from 1, age 1
    expect(byItem[3]).toBeCloseTo(0.25 * 0.5 + 0.8 * 0.25, 6); // from 1 (age 1) and 4 (age 2)
    expect(Object.keys(byItem)).toHaveLength(3);
    const term = blend.term([4, 1, 2]);
    const termOf = Object.fromEntries(Array.from(term.items, (item, i) => [item, term.values[i]]));
    expect(termOf[3]).toBeCloseTo(2 * Math.log1p(10 * 0.325), 5);
    // Sums are reset between calls: the same history gives the same term.
    expect(Array.from(blend.term([4, 1, 2]).values)).toEqual(Array.from(term.values));
    expect(new CooccurrenceBlend(neighbours, { weight: 0, scale: 10, decay: 0.5 }).term([4, 1, 2]).items).toHaveLength(0);
  });

  it('adds the term to the items next to the history only', () => {
    const raw = Float32Array.from([-1e9, 0.3, -1.2, 2.0, 0.7, -0.4]);
    const term = new CooccurrenceBlend(neighbours, { weight: 1.5, scale: 3, decay: 0.9 }).term([1, 4]);
    const blended = Float32Array.from(raw);
    addTerm(blended, term);
    expect(blended[3]).toBeGreaterThan(raw[3]!);
    expect(blended[5]).toBe(raw[5]); // no neighbour of the history
  });

  it('adds the repeat part to the history\'s own items: weight · log(1 + Σ decay^age of each occurrence), on top of their co-occurrence value', () => {
    const plain = new CooccurrenceBlend(neighbours, { weight: 2, scale: 10, decay: 0.5 });
    const both = new CooccurrenceBlend(neighbours, { weight: 2, scale: 10, decay: 0.5, repeatWeight: 3, repeatDecay: 0.5 });
    // History oldest first: 5 (age 3), 1 (age 2), 5 (age 1), 2 (age 0).
    const history = [5, 1, 5, 2];
    const before = plain.term(history);
    const after = both.term(history);
    const of = (t: { items: Int32Array; values: Float32Array }): Record<number, number> => Object.fromEntries(Array.from(t.items, (item, i) => [item, t.values[i]!]));
    const b = of(before);
    const a = of(after);
    expect(a[5]).toBeCloseTo(3 * Math.log1p(0.5 + 0.125), 5); // no neighbour: the repeat part alone
    expect(a[1]).toBeCloseTo(b[1]! + 3 * Math.log1p(0.25), 5); // a neighbour of 2 and in the history
    expect(a[2]).toBeCloseTo(b[2]! + 3 * Math.log1p(1), 5);
    expect(a[3]).toBe(b[3]); // a neighbour only
    expect(Object.keys(a).sort()).toEqual(['1', '2', '3', '5']);
    expect(of(before)).toEqual(b); // the co-occurrence term is left alone
    // Repeated calls give the same term (scratch is reset), and a version without the part is unchanged.
    expect(of(both.term(history))).toEqual(a);
    const repeatOnly = new CooccurrenceBlend(neighbours, { weight: 0, scale: 0, decay: 0, repeatWeight: 1, repeatDecay: 1 }).term([4, 4, 0, 4]);
    expect(Array.from(repeatOnly.items)).toEqual([4]);
    expect(repeatOnly.values[0]).toBeCloseTo(Math.log1p(3), 6); // padding (0) left out
  });
});
