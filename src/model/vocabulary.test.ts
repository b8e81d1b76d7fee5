import { describe, expect, it } from 'vitest';
import { ItemVocabulary } from './vocabulary.js';

describe('ItemVocabulary', () => {
  // Nearly dense ids (the store's autoincrement ids) take the array index; ids spread far wider than
  // the vocabulary take the Map. Both must answer the same.
  const cases = [
    ['dense', Int32Array.from([3, 1, 7, 2, 10])],
    ['sparse', Int32Array.from([3, 1, 7_000_000, 2, 10])],
  ] as const;

  for (const [layout, ids] of cases) {
    it(`maps ids to indices 1..size and back, unknown ids to 0 (${layout} ids)`, () => {
      const vocabulary = new ItemVocabulary(ids);
      expect(vocabulary.size).toBe(5);
      ids.forEach((id, k) => {
        expect(vocabulary.indexOf(id)).toBe(k + 1);
        expect(vocabulary.itemAt(k + 1)).toBe(id);
      });
      for (const unknown of [0, 4, 11, 6_999_999, 1e9, -1, 2.5, Number.NaN]) expect(vocabulary.indexOf(unknown)).toBe(0);
      expect(Array.from(vocabulary.encode([ids[2]!, 4, ids[1]!, -1]))).toEqual([3, 0, 2, 0]);
    });
  }

  it('takes negative ids (a Map then)', () => {
    const vocabulary = new ItemVocabulary(Int32Array.from([-5, 4]));
    expect(vocabulary.indexOf(-5)).toBe(1);
    expect(vocabulary.indexOf(4)).toBe(2);
    expect(vocabulary.indexOf(0)).toBe(0);
  });

  it('fromItems: the distinct ids ascending', () => {
    const vocabulary = ItemVocabulary.fromItems([9, 2, 9, 5, 2]);
    expect(Array.from(vocabulary.itemIds)).toEqual([2, 5, 9]);
    expect(vocabulary.indexOf(5)).toBe(2);
  });
});
