import { describe, expect, it } from 'vitest';
import { Random } from '../random.js';
import { topIndices } from './beam-search.js';
import { ItemScorer, MAX_CANDIDATES } from './item-scorer.js';

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

  describe('shortlists through the 16-bit table', () => {
    // Most rows hold one large value in column 0 (so their 16-bit scale is coarse for the rest) and small ones
    // elsewhere; queries are 0 in column 0. Scores then crowd near the cut-off closer than the quantisation error
    // (with the bound set to 0, every shortlist here changes), and two rows are equal: a bound too tight, or a
    // missing rescore, changes the shortlist or its scores.
    const rows = 6_001;
    const cols = 37;
    const random = new Random(23);
    const table = Float32Array.from({ length: rows * cols }, (_, i) => (i % cols === 0 && Math.floor(i / cols) % 5 !== 0 ? 4 : (random.next() * 2 - 1) * (0.02 + 0.05 * random.next())));
    table.copyWithin(41 * cols, 40 * cols, 41 * cols);
    const exact = new ItemScorer(table, rows, cols, 8);
    const quantised = new ItemScorer(table, rows, cols, 8, { quantised: true });

    it.each([1, 2, 3, 5, 8])('gives float32\'s shortlist, scores to the bit, for %i queries in a pass', (count) => {
      const queries = Float32Array.from({ length: count * cols }, (_, i) => (i % cols === 0 ? 0 : random.next() * 2 - 1));
      // A term raising a few rows (one of them the duplicated pair), as a co-occurrence term does.
      const terms = Array.from({ length: count }, (_, b) => (b % 2 === 0 ? { items: Int32Array.from([40, 41, 7, 5_000 + b]), values: Float32Array.from([0.5, 0.5, 0.25, 1]) } : undefined));
      expect(quantised.isQuantised).toBe(true);
      const want = exact.shortlists(queries, count, 100, terms);
      const got = quantised.shortlists(queries, count, 100, terms);
      got.forEach((list, b) => {
        expect(Array.from(list.indices)).toEqual(Array.from(want[b]!.indices));
        expect(Array.from(list.scores)).toEqual(Array.from(want[b]!.scores));
        expect(Math.abs(list.logNormaliser - want[b]!.logNormaliser)).toBeLessThan(1e-3);
      });
      // The same as scoring each alone in float32, term added.
      const alone = exact.scores(queries.subarray(0, cols)).slice();
      for (let j = 0; j < 4; j++) alone[terms[0]!.items[j]!]! += terms[0]!.values[j]!;
      expect(Array.from(got[0]!.indices)).toEqual(topIndices(alone, 100, (i) => i !== 0));
    });

    it('scores a query in float32 when more than MAX_CANDIDATES rows could reach its shortlist', () => {
      const flatRows = MAX_CANDIDATES + 500;
      const flat = new Float32Array(flatRows * 4).fill(0.25);
      flat[17 * 4] = 0.5;
      const scorer = new ItemScorer(flat, flatRows, 4, 1, { quantised: true });
      const [list] = scorer.shortlists(Float32Array.from([1, 1, 1, 1]), 1, 3);
      expect(Array.from(list!.indices)).toEqual([17, 1, 2]);
      expect(Array.from(list!.scores)).toEqual([1.25, 1, 1]);
      expect(list!.logNormaliser).toBeCloseTo(Math.log(Math.exp(1.25) + (flatRows - 2) * Math.exp(1)), 3);
    });
  });
});
