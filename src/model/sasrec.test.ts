import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';
import { selectBackend } from './backend.js';
import { MODEL_DEFAULTS, type ModelConfig } from './config.js';
import { SasRec } from './sasrec.js';

const config: ModelConfig = { ...MODEL_DEFAULTS, numItems: 30, numEventTypes: 3, maxLength: 8, dim: 16, heads: 2, blocks: 2, ffnDim: 16, dropout: 0.3, seed: 3 };

describe('SasRec', () => {
  beforeAll(async () => {
    await selectBackend('wasm');
  });

  const run = (model: SasRec, items: number[][], types?: number[][], returnAttention = false) =>
    model.forward(tf.tensor2d(items, undefined, 'int32'), types ? tf.tensor2d(types, undefined, 'int32') : undefined, { returnAttention });

  it('maps [batch, T] histories to [batch, T, dim] states and every item score', () => {
    const model = new SasRec(config);
    const { hidden } = run(model, [[0, 0, 3, 4, 5], [1, 2, 3, 4, 5]], [[0, 0, 1, 2, 3], [1, 1, 1, 1, 3]]);
    expect(hidden.shape).toEqual([2, 5, 16]);
    const scores = model.scores(tf.squeeze(tf.slice(hidden, [0, 4, 0], [2, 1, 16]), [1]) as tf.Tensor2D);
    expect(scores.shape).toEqual([2, 31]);
    const first = scores.arraySync()[0]!;
    expect(first[0]).toBeLessThan(-1e8); // padding is never a candidate
    expect(first.slice(1).every(Number.isFinite)).toBe(true);
  });

  it('is causal: changing a later event never changes an earlier position', () => {
    const model = new SasRec(config);
    const a = run(model, [[5, 6, 7, 8, 9, 10]]).hidden.arraySync()[0]!;
    const b = run(model, [[5, 6, 7, 21, 22, 23]]).hidden.arraySync()[0]!;
    for (let t = 0; t < 3; t++) a[t]!.forEach((v, d) => expect(b[t]![d]).toBeCloseTo(v, 5));
    expect(Math.abs(a[3]![0]! - b[3]![0]!)).toBeGreaterThan(1e-4);
  });

  it('ignores left padding: the same history gives the same states however much padding precedes it', () => {
    const model = new SasRec(config);
    const short = run(model, [[4, 9, 2]], [[1, 2, 3]]).hidden.arraySync()[0]!;
    const padded = run(model, [[0, 0, 0, 0, 4, 9, 2]], [[0, 0, 0, 0, 1, 2, 3]]).hidden.arraySync()[0]!;
    for (let t = 0; t < 3; t++) short[t]!.forEach((v, d) => expect(padded[t + 4]![d]).toBeCloseTo(v, 4));
    padded.slice(0, 4).forEach((row) => row.forEach((v) => expect(v).toBe(0)));
  });

  it('returns attention rows that sum to 1 over visible (earlier, real) events only', () => {
    const model = new SasRec(config);
    const { attention } = run(model, [[0, 0, 3, 4, 5, 6]], undefined, true);
    expect(attention).toHaveLength(2);
    for (const layer of attention!) {
      expect(layer.shape).toEqual([1, 2, 6, 6]);
      for (const head of layer.arraySync()[0]!) {
        for (let t = 2; t < 6; t++) {
          const row = head[t]!;
          expect(row.reduce((s, v) => s + v, 0)).toBeCloseTo(1, 5);
          row.forEach((v, s) => (s > t || s < 2 ? expect(v).toBeLessThan(1e-6) : expect(v).toBeGreaterThan(0)));
        }
      }
    }
  });

  it('starts from the same weights for the same seed, and different ones for another', () => {
    const a = new SasRec(config);
    const b = new SasRec(config);
    const c = new SasRec({ ...config, seed: 4 });
    a.variables.forEach((v, i) => expect(Array.from(v.dataSync())).toEqual(Array.from(b.variables[i]!.dataSync())));
    expect(Array.from(a.itemEmbedding.dataSync())).not.toEqual(Array.from(c.itemEmbedding.dataSync()));
  });

  it('rejects an invalid configuration with the field named', () => {
    expect(() => new SasRec({ ...config, heads: 3 })).toThrow(/divisible by heads/);
  });
});
