import * as tf from '@tensorflow/tfjs';
import { afterAll, describe, expect, it } from 'vitest';
import { Random } from '../random.js';
import { selectBackend } from './backend.js';
import { normal } from './init.js';
import { dense, dropout, embeddingLookup, layerNorm } from './ops.js';

const random = new Random(7);
const table = Array.from(normal(random, 6 * 3, 1));
const indices = [4, 0, 4, 2, 5]; // repeated index: gradients must add up
const x = Array.from(normal(random, 5 * 3, 1));
const w = Array.from(normal(random, 3 * 4, 1));
const b = Array.from(normal(random, 4, 1));
const upstream = Array.from(normal(random, 5 * 4, 1));

/** Gradients of sum(f(...) * upstream) computed by `which` implementation on the current backend. */
function gradients(which: 'custom' | 'reference'): number[][] {
  return tf.tidy(() => {
    const t = tf.tensor2d(table, [6, 3]);
    const idx = tf.tensor1d(indices, 'int32');
    const xs = tf.tensor2d(x, [5, 3]);
    const ws = tf.tensor2d(w, [3, 4]);
    const bs = tf.tensor1d(b);
    const up = tf.tensor2d(upstream, [5, 4]);
    const lookup = (tt: tf.Tensor) => (which === 'custom' ? embeddingLookup(tt as tf.Tensor2D, idx) : tf.gather(tt, idx));
    const gTable = tf.grad((tt: tf.Tensor) => tf.sum(tf.mul(tf.matMul(lookup(tt), ws), up)))(t);
    const affine = (xx: tf.Tensor, ww: tf.Tensor, bb: tf.Tensor) => (which === 'custom' ? dense(xx as tf.Tensor2D, ww as tf.Tensor2D, bb as tf.Tensor1D) : tf.add(tf.matMul(xx, ww), bb));
    const [gx, gw, gb] = tf.grads((xx: tf.Tensor, ww: tf.Tensor, bb: tf.Tensor) => tf.sum(tf.mul(affine(xx, ww, bb), up)))([xs, ws, bs]);
    return [gTable, gx!, gw!, gb!].map((g) => Array.from(g.dataSync()));
  });
}

describe('custom-gradient ops', () => {
  afterAll(async () => {
    await selectBackend('wasm');
  });

  it('match the reference gradients of tf.gather and matMul+add on the cpu backend', async () => {
    await selectBackend('cpu');
    const custom = gradients('custom');
    const reference = gradients('reference');
    custom.forEach((g, k) => g.forEach((value, i) => expect(value).toBeCloseTo(reference[k]![i]!, 5)));
    // The repeated index 4 received the sum of two rows' gradients; the unused row 1 none.
    expect(custom[0]!.slice(3, 6)).toEqual([0, 0, 0]);
  });

  it('give the same gradients on wasm, where tf.gather has no gradient kernel', async () => {
    await selectBackend('cpu');
    const reference = gradients('reference');
    await selectBackend('wasm');
    const custom = gradients('custom');
    custom.forEach((g, k) => g.forEach((value, i) => expect(value).toBeCloseTo(reference[k]![i]!, 4)));
  });

  it('layerNorm normalises the last axis and matches a finite-difference gradient', async () => {
    await selectBackend('cpu');
    const input = [0.5, -1, 2, 3, 0, 1];
    const gamma = tf.tensor1d([1, 2, 0.5]);
    const beta = tf.tensor1d([0, 1, -1]);
    const f = (values: number[]): number => tf.tidy(() => tf.sum(tf.mul(layerNorm(tf.tensor2d(values, [2, 3]), gamma, beta), tf.tensor2d([1, -2, 3, 0.5, 1, -1], [2, 3]))).dataSync()[0]!);
    const analytic = Array.from(tf.grad((t: tf.Tensor) => tf.sum(tf.mul(layerNorm(t, gamma, beta), tf.tensor2d([1, -2, 3, 0.5, 1, -1], [2, 3]))))(tf.tensor2d(input, [2, 3])).dataSync());
    const h = 1e-3;
    input.forEach((_, i) => {
      const plus = [...input];
      const minus = [...input];
      plus[i]! += h;
      minus[i]! -= h;
      expect(analytic[i]).toBeCloseTo((f(plus) - f(minus)) / (2 * h), 2);
    });
    const normed = layerNorm(tf.tensor2d([1, 2, 3], [1, 3]), tf.ones([3]) as tf.Tensor1D, tf.zeros([3]) as tf.Tensor1D);
    const values = Array.from(normed.dataSync());
    expect(values.reduce((a, v) => a + v, 0)).toBeCloseTo(0, 5);
    expect(values.reduce((a, v) => a + v * v, 0) / 3).toBeCloseTo(1, 4);
  });

  for (const backend of ['cpu', 'wasm'] as const) {
    it(`layerNorm's gradients for x, gamma and beta equal autodiff through the plain ops on a 3-D input (${backend})`, async () => {
      await selectBackend(backend);
      const r = new Random(3);
      const [xs, g, bt, up] = [normal(r, 2 * 3 * 4, 1), normal(r, 4, 1), normal(r, 4, 1), normal(r, 2 * 3 * 4, 1)];
      const plain = (xx: tf.Tensor, gg: tf.Tensor, bb: tf.Tensor): tf.Tensor => {
        const { mean, variance } = tf.moments(xx, -1, true);
        return tf.add(tf.mul(tf.mul(tf.sub(xx, mean), tf.rsqrt(tf.add(variance, 1e-8))), gg), bb);
      };
      const grads = (f: (xx: tf.Tensor, gg: tf.Tensor, bb: tf.Tensor) => tf.Tensor): number[][] =>
        tf.tidy(() =>
          tf
            .grads((xx: tf.Tensor, gg: tf.Tensor, bb: tf.Tensor) => tf.sum(tf.mul(f(xx, gg, bb), tf.tensor3d(up, [2, 3, 4]))))([tf.tensor3d(xs, [2, 3, 4]), tf.tensor1d(g), tf.tensor1d(bt)])
            .map((t) => Array.from(t.dataSync())),
        );
      const fused = grads((xx, gg, bb) => layerNorm(xx, gg as tf.Tensor1D, bb as tf.Tensor1D));
      const reference = grads(plain);
      fused.forEach((values, k) => values.forEach((v, i) => expect(v).toBeCloseTo(reference[k]![i]!, 4)));
    });
  }

  it('dropout keeps each element with probability 1 - rate, scales it by 1 / (1 - rate), passes the gradient through the same mask, and repeats with the seed', async () => {
    await selectBackend('wasm');
    const x = tf.ones([200, 50]);
    const run = (seed: number): { out: number[]; grad: number[] } =>
      tf.tidy(() => {
        const out = Array.from(dropout(x, 0.3, new Random(seed)).dataSync());
        const grad = Array.from(tf.grad((t: tf.Tensor) => tf.sum(tf.mul(dropout(t, 0.3, new Random(seed)), 2)))(x).dataSync());
        return { out, grad };
      });
    const { out, grad } = run(9);
    const kept = out.filter((v) => v !== 0);
    expect(kept.length / out.length).toBeCloseTo(0.7, 1);
    kept.forEach((v) => expect(v).toBeCloseTo(1 / 0.7, 5));
    // d/dx of sum(2 · x · mask) = 2 · mask: the same positions, the same scale.
    grad.forEach((g, i) => expect(g).toBeCloseTo(2 * out[i]!, 5));
    expect(run(9).out).toEqual(out);
    expect(run(10).out).not.toEqual(out);
  });
});
