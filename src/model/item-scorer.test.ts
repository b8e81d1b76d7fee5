import { describe, expect, it } from 'vitest';
import { Random } from '../random.js';
import { topIndices } from './beam-search.js';
import { ItemScorer, MAX_CANDIDATES } from './item-scorer.js';
import { instantiateKernel, layoutKernelMemory, type KernelMemory } from './kernel-module.js';
import { runSteps } from './steps.js';

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

  it('is built from another scorer\'s exported tables by copying them: the same tables, in shared memory', () => {
    const random = new Random(5);
    const [rows, cols] = [5_000, 37];
    const table = Float32Array.from({ length: rows * cols }, () => random.next() * 2 - 1);
    for (const quantised of [true, false]) {
      const built = new ItemScorer(table, rows, cols, 2, { quantised });
      const exported = runSteps(built.exportTables());
      expect(exported.table.buffer).toBeInstanceOf(SharedArrayBuffer);
      expect(exported.quantised !== undefined).toBe(quantised);
      const copied = new ItemScorer(exported, rows, cols, 2, { quantised });
      const again = runSteps(copied.exportTables());
      expect(Array.from(again.table)).toEqual(Array.from(exported.table));
      for (const part of ['table', 'scales', 'rowL1'] as const) expect(Array.from(again.quantised?.[part] ?? [])).toEqual(Array.from(exported.quantised?.[part] ?? []));
      // Tables of another shape are refused.
      expect(() => new ItemScorer(exported, rows - 1, cols)).toThrow(RangeError);
      expect(() => new ItemScorer({ ...exported, table: exported.table.subarray(4) }, rows, cols)).toThrow(RangeError);
    }
  });

  it('rejects a query of the wrong width', () => {
    expect(() => new ItemScorer(new Float32Array(4), 2, 2).scores([1])).toThrow(RangeError);
  });

  describe('shortlists through the 8-bit table', () => {
    // Most rows hold one large value in column 0 (so their 8-bit scale is coarse for the rest) and small ones
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

describe('the scoring kernel', () => {
  interface QuantiseExports {
    readonly memory: KernelMemory;
    quantiseRows(table: number, stride: number, cols: number, from: number, to: number, rowLimit: number, out8: number, stride8: number, scales: number, l1s: number): void;
    scoreBatchI8(table: number, scales: number, rows: number, stride: number, queries: number, qscales: number, n: number, out: number, ldo: number): void;
  }

  it('quantiseRows gives the 8-bit table, scales and row sums of the JavaScript it replaced, bit for bit', () => {
    const kernel = instantiateKernel<QuantiseExports>('scoring');
    expect(kernel).toBeDefined();
    const rows = 300;
    const cols = 37;
    const stride = 40;
    const stride8 = 48;
    const rowLimit = 127;
    const random = new Random(11);
    const values = Float32Array.from({ length: rows * cols }, () => (random.next() * 2 - 1) * 10 ** (random.next() * 6 - 3));
    values.fill(0, 5 * cols, 6 * cols); // a row of zeros
    // A row whose values land on halves of its scale (ties: Math.round goes toward +infinity, -2.5 → -2).
    const max = 127 * 2 ** -10;
    values.set(Array.from({ length: cols }, (_, i) => (i === 0 ? max : ((i % 7) - 3.5) * 2 ** -10)), 9 * cols);
    const [tableAt, out8At, scalesAt, l1At] = layoutKernelMemory(kernel!.memory, [4 * rows * stride, rows * stride8, 4 * rows, 4 * rows]) as [number, number, number, number];
    const buffer = kernel!.memory.buffer;
    const table = new Float32Array(buffer, tableAt, rows * stride);
    for (let r = 0; r < rows; r++) table.set(values.subarray(r * cols, (r + 1) * cols), r * stride);
    // Two calls, as the steps of a load make them.
    kernel!.quantiseRows(tableAt, stride, cols, 0, 120, rowLimit, out8At, stride8, scalesAt, l1At);
    kernel!.quantiseRows(tableAt, stride, cols, 120, rows, rowLimit, out8At, stride8, scalesAt, l1At);

    const expected8 = new Int8Array(rows * stride8);
    const expectedScales = new Float32Array(rows);
    const expectedL1 = new Float32Array(rows);
    for (let r = 0; r < rows; r++) {
      let m = 0;
      let l1 = 0;
      for (let i = 0; i < cols; i++) {
        const v = Math.abs(values[r * cols + i]!);
        if (v > m) m = v;
        l1 += v;
      }
      const scale = Math.fround(m / rowLimit);
      expectedScales[r] = scale;
      expectedL1[r] = l1 * (1 + 2 ** -20);
      if (scale > 0) for (let i = 0; i < cols; i++) expected8[r * stride8 + i] = Math.round(values[r * cols + i]! / scale);
    }
    expect(Array.from(new Int8Array(buffer, out8At, rows * stride8))).toEqual(Array.from(expected8));
    expect(Array.from(new Float32Array(buffer, scalesAt, rows))).toEqual(Array.from(expectedScales));
    expect(Array.from(new Float32Array(buffer, l1At, rows))).toEqual(Array.from(expectedL1));
    // The tie row really has ties, both signs.
    const ties = Array.from({ length: cols - 1 }, (_, i) => values[9 * cols + i + 1]! / expectedScales[9]!).filter((v) => Math.abs(v - Math.trunc(v)) === 0.5);
    expect(ties.some((v) => v < 0) && ties.some((v) => v > 0)).toBe(true);
  });
  it.each([1, 2, 3, 5])('scoreBatchI8 gives each row\'s exact integer dot product times both scales, for %i queries', (n) => {
    const kernel = instantiateKernel<QuantiseExports>('scoring');
    // 203 rows: blocks of 128, then rows in fours, then the last three one at a time; 48 values a row (three steps of 16).
    const [rows, stride] = [203, 48];
    const random = new Random(17);
    const [tableAt, scalesAt, queriesAt, qscalesAt, outAt] = layoutKernelMemory(kernel!.memory, [rows * stride, 4 * rows, 2 * n * stride, 4 * n, 4 * n * rows]) as [number, number, number, number, number];
    const buffer = kernel!.memory.buffer;
    const table = Int8Array.from({ length: rows * stride }, () => Math.floor(random.next() * 255) - 127);
    const queries = Int16Array.from({ length: n * stride }, () => Math.floor(random.next() * 65_535) - 32_767);
    const scales = Float32Array.from({ length: rows }, () => random.next() * 0.01);
    const qscales = Float32Array.from({ length: n }, () => random.next() * 0.001);
    new Int8Array(buffer, tableAt, table.length).set(table);
    new Int16Array(buffer, queriesAt, queries.length).set(queries);
    new Float32Array(buffer, scalesAt, rows).set(scales);
    new Float32Array(buffer, qscalesAt, n).set(qscales);
    kernel!.scoreBatchI8(tableAt, scalesAt, rows, stride, queriesAt, qscalesAt, n, outAt, rows);
    const out = new Float32Array(buffer, outAt, n * rows);
    for (let b = 0; b < n; b++)
      for (let r = 0; r < rows; r++) {
        let dot = 0;
        for (let i = 0; i < stride; i++) dot += table[r * stride + i]! * queries[b * stride + i]!;
        expect(out[b * rows + r]).toBe(Math.fround(Math.fround(dot) * Math.fround(scales[r]! * qscales[b]!)));
      }
  });
});
