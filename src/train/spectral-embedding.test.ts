import { describe, expect, it } from 'vitest';
import { Random } from '../random.js';
import type { ItemCooccurrence } from '../model/item-cooccurrence.js';
import { spectralItemEmbedding, symmetricEigen } from './spectral-embedding.js';
import { spectralKernel } from './spectral-kernel.js';

/** A symmetric co-occurrence matrix from dense counts [rows × rows]. */
function sparse(dense: number[][]): Omit<ItemCooccurrence, 'histories'> {
  const offsets = [0];
  const columns: number[] = [];
  const counts: number[] = [];
  dense.forEach((r) => {
    r.forEach((v, j) => {
      if (v !== 0) {
        columns.push(j);
        counts.push(v);
      }
    });
    offsets.push(columns.length);
  });
  return { numItems: dense.length - 1, offsets: Int32Array.from(offsets), columns: Int32Array.from(columns), counts: Float32Array.from(counts) };
}

/** Random symmetric counts over items 1..n (row 0, padding, empty), some items without any co-occurrence. */
function randomGraph(n: number, seed: number, isolated: (i: number) => boolean = () => false): number[][] {
  const random = new Random(seed);
  const dense = Array.from({ length: n + 1 }, () => new Array<number>(n + 1).fill(0));
  for (let i = 1; i <= n; i++) {
    for (let j = i + 1; j <= n; j++) {
      if (isolated(i) || isolated(j) || random.next() > 0.3) continue;
      dense[i]![j] = dense[j]![i] = 1 + random.int(5);
    }
  }
  return dense;
}

const cosine = (e: Float32Array, dim: number, a: number, b: number): number => {
  let ab = 0;
  let aa = 0;
  let bb = 0;
  for (let d = 0; d < dim; d++) {
    ab += e[a * dim + d]! * e[b * dim + d]!;
    aa += e[a * dim + d]! ** 2;
    bb += e[b * dim + d]! ** 2;
  }
  return ab / Math.sqrt(aa * bb);
};

describe('symmetricEigen', () => {
  it('finds the eigenpairs of a symmetric matrix', () => {
    const m = [4, 1, 2, 1, 3, 0, 2, 0, 5];
    const { values, vectors } = symmetricEigen(Float64Array.from(m), 3);
    expect(Array.from(values).sort((a, b) => a - b).reduce((a, b) => a + b)).toBeCloseTo(12, 10); // the trace
    for (let e = 0; e < 3; e++) {
      for (let r = 0; r < 3; r++) {
        const mv = [0, 1, 2].reduce((sum, c) => sum + m[r * 3 + c]! * vectors[c * 3 + e]!, 0);
        expect(mv).toBeCloseTo(values[e]! * vectors[r * 3 + e]!, 10);
      }
    }
  });
});

describe('spectralItemEmbedding', () => {
  it('is the rank-dim eigen-approximation of the normalised co-occurrence matrix (up to one scale)', () => {
    const n = 30;
    const dim = 6;
    const dense = randomGraph(n, 3);
    const embedding = spectralItemEmbedding(sparse(dense), { dim, seed: 1, iterations: 200, oversampling: 8, implementation: 'javascript' });
    // The same by dense Jacobi: S = D^-1/2 C D^-1/2 over items 1..n, its dim largest eigenpairs.
    const degree = dense.map((r) => r.reduce((a, b) => a + b, 0));
    const s = new Float64Array(n * n);
    for (let i = 0; i < n; i++) for (let j = 0; j < n; j++) s[i * n + j] = dense[i + 1]![j + 1]! / Math.sqrt(degree[i + 1]! * degree[j + 1]!);
    const { values, vectors } = symmetricEigen(s, n);
    const top = Array.from(values.keys()).sort((a, b) => values[b]! - values[a]!).slice(0, dim);
    const approx = (i: number, j: number): number => top.reduce((sum, e) => sum + values[e]! * vectors[i * n + e]! * vectors[j * n + e]!, 0);
    const got = (i: number, j: number): number => Array.from({ length: dim }, (_, d) => embedding[(i + 1) * dim + d]! * embedding[(j + 1) * dim + d]!).reduce((a, b) => a + b, 0);
    // E Eᵀ = c · U Λ Uᵀ for one c (the rescaling to the model's spread).
    let num = 0;
    let den = 0;
    for (let i = 0; i < n; i++) for (let j = 0; j < n; j++) {
      num += got(i, j) * approx(i, j);
      den += approx(i, j) ** 2;
    }
    const c = num / den;
    for (let i = 0; i < n; i++) for (let j = 0; j < n; j++) expect(got(i, j)).toBeCloseTo(c * approx(i, j), 4);
  });

  it('puts items bought by the same shoppers together, gives the model\'s spread, and a random start to items seen with no other', () => {
    // Items 1..20 in two groups that never meet; items 21 and 22 never co-occur with anything.
    const n = 22;
    const group = (i: number): number => (i <= 10 ? 0 : 1);
    const dense = randomGraph(n, 5, (i) => i > 20);
    for (let i = 1; i <= n; i++) for (let j = 1; j <= n; j++) if (i > 20 || j > 20 || group(i) !== group(j)) dense[i]![j] = 0;
    for (let i = 1; i <= 20; i++) for (let j = i + 1; j <= 20; j++) if (group(i) === group(j) && dense[i]![j] === 0) dense[i]![j] = dense[j]![i] = 1;
    // Two dimensions: the two leading eigenvectors (eigenvalue 1), one per group.
    const dim = 2;
    const embedding = spectralItemEmbedding(sparse(dense), { dim, seed: 2 });
    let within = 0;
    let across = 0;
    for (let i = 1; i <= 20; i++) for (let j = i + 1; j <= 20; j++) {
      if (group(i) === group(j)) within = Math.max(within, 1 - cosine(embedding, dim, i, j));
      else across = Math.max(across, Math.abs(cosine(embedding, dim, i, j)));
    }
    expect(within).toBeLessThan(0.05); // cosine > 0.95 inside a group
    expect(across).toBeLessThan(0.05); // nearly orthogonal across groups
    const informative = Array.from(embedding.subarray(dim, 21 * dim));
    const mean = informative.reduce((a, b) => a + b, 0) / informative.length;
    const std = Math.sqrt(informative.reduce((a, b) => a + (b - mean) ** 2, 0) / informative.length);
    expect(std).toBeCloseTo(1 / Math.sqrt(dim), 5);
    // A wider spread scales the whole table.
    const wide = spectralItemEmbedding(sparse(dense), { dim, seed: 2, spread: 1.5 });
    wide.forEach((v, i) => expect(v).toBeCloseTo(1.5 * embedding[i]!, 5));
    // Rows without co-occurrence (padding, 21, 22): nonzero random starts, not copies of each other.
    for (const i of [0, 21, 22]) expect(embedding.subarray(i * dim, (i + 1) * dim).some((v) => v !== 0)).toBe(true);
    expect(Array.from(embedding.subarray(21 * dim, 22 * dim))).not.toEqual(Array.from(embedding.subarray(22 * dim, 23 * dim)));
  });

  it('gives the same table for the same seed, in the kernel as in JavaScript (rows not a multiple of 4)', () => {
    const matrix = sparse(randomGraph(57, 9, (i) => i % 13 === 0));
    const options = { dim: 8, seed: 4, iterations: 12 };
    const javascript = spectralItemEmbedding(matrix, { ...options, implementation: 'javascript' });
    expect(spectralItemEmbedding(matrix, { ...options, implementation: 'javascript' })).toEqual(javascript);
    expect(spectralKernel()).not.toBeNull(); // built by npm install; without it the product falls back to JavaScript
    const kernel = spectralItemEmbedding(matrix, { ...options, implementation: 'kernel' });
    expect(spectralItemEmbedding(matrix, { ...options, implementation: 'kernel' })).toEqual(kernel);
    kernel.forEach((v, i) => expect(v).toBeCloseTo(javascript[i]!, 3));
  });

  it('copes with a catalogue smaller than the embedding', () => {
    const embedding = spectralItemEmbedding(sparse(randomGraph(5, 1)), { dim: 16, seed: 1 });
    expect(embedding.length).toBe(6 * 16);
    expect(embedding.every(Number.isFinite)).toBe(true);
  });
});
