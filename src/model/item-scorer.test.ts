import { describe, expect, it } from 'vitest';
import { Random } from '../random.js';
import { topIndices } from './beam-search.js';
import { ItemScorer } from './item-scorer.js';

describe('ItemScorer', () => {
  it.each([
    [7, 64],
    [1001, 65],
    [3, 5],
  ])('matches a plain dot product for %i rows of %i columns', (rows, cols) => {
    const random = new Random(7);
    const table = Float32Array.from({ length: rows * cols }, () => random.next() * 2 - 1);
    const x = Float32Array.from({ length: cols }, () => random.next() * 2 - 1);
    const scorer = new ItemScorer(table, rows, cols);
    expect(scorer.accelerated).toBe(true);
    const scores = scorer.scores(x);
    expect(scores.length).toBe(rows);
    for (let r = 0; r < rows; r++) {
      let expected = 0;
      for (let c = 0; c < cols; c++) expected += table[r * cols + c]! * x[c]!;
      expect(scores[r]).toBeCloseTo(expected, 4);
    }
    expect(Array.from(scorer.row(rows - 1))).toEqual(Array.from(table.subarray((rows - 1) * cols)));
  });

  it('computes the softmax normaliser of the last scores, padding row left out', () => {
    const random = new Random(3);
    for (const [rows, spread] of [[23_716, 8], [9, 1], [2, 30], [1_001, 60]] as const) {
      const table = Float32Array.from({ length: rows * 4 }, () => (random.next() * 2 - 1) * spread);
      const scorer = new ItemScorer(table, rows, 4);
      const scores = scorer.scores([1, -0.5, 0.25, 2]);
      let max = -Infinity;
      for (let i = 1; i < rows; i++) max = Math.max(max, scores[i]!);
      let sum = 0;
      for (let i = 1; i < rows; i++) sum += Math.exp(scores[i]! - max);
      const expected = max + Math.log(sum);
      expect(Math.abs(scorer.logSumExpOfLast() - expected)).toBeLessThan(1e-5 * Math.max(1, Math.abs(expected)));
    }
  });

  it('keeps each table in its own memory', () => {
    const a = new ItemScorer(Float32Array.from([1, 0, 0, 1]), 2, 2);
    const b = new ItemScorer(Float32Array.from([2, 0, 0, 2]), 2, 2);
    expect(Array.from(a.scores([1, 1]))).toEqual([1, 1]);
    expect(Array.from(b.scores([1, 1]))).toEqual([2, 2]);
  });

  it.each([1, 2, 3, 5])('scores %i queries in one pass as it scores each alone, with each row\'s normaliser and shortlist', (count) => {
    const random = new Random(11);
    const rows = 1_003;
    const cols = 10;
    const table = Float32Array.from({ length: rows * cols }, () => random.next() * 2 - 1);
    // Ties: rows 7 and 8 equal, so the shortlist must put the lower one first.
    table.copyWithin(8 * cols, 7 * cols, 8 * cols);
    const queries = Float32Array.from({ length: count * cols }, () => random.next() * 2 - 1);
    const scorer = new ItemScorer(table, rows, cols, 8);
    const alone = Array.from({ length: count }, (_, b) => {
      const scores = scorer.scores(queries.subarray(b * cols, (b + 1) * cols)).slice();
      return { scores, normaliser: scorer.logSumExpOfLast(), top: topIndices(scores, 20, (i) => i !== 0) };
    });
    const together = scorer.scoresOf(queries, count);
    expect(together.length).toBe(count * rows);
    alone.forEach(({ scores, normaliser, top }, b) => {
      for (let r = 0; r < rows; r++) expect(together[b * rows + r]).toBeCloseTo(scores[r]!, 5);
      expect(scorer.logSumExpOfLast(b)).toBeCloseTo(normaliser, 5);
      const best = scorer.topOfLast(20, b);
      expect(Array.from(best.indices)).toEqual(top);
      expect(Array.from(best.scores)).toEqual(top.map((i) => together[b * rows + i]));
    });
    expect(() => scorer.scoresOf(new Float32Array(9 * cols), 9)).toThrow(RangeError);
  });

  it('rejects a query of the wrong width', () => {
    expect(() => new ItemScorer(new Float32Array(4), 2, 2).scores([1])).toThrow(RangeError);
  });
});
