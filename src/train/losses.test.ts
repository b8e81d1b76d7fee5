import * as tf from '@tensorflow/tfjs';
import { afterAll, describe, expect, it } from 'vitest';
import { selectBackend } from '../model/backend.js';
import { normal } from '../model/init.js';
import { Random } from '../random.js';
import { fullSoftmaxLoss, NegativeSampler, sampledSoftmaxLoss } from './losses.js';

const random = new Random(11);
const N = 4;
const D = 3;
const V = 7; // items 1..6, 0 = padding
const states = Array.from(normal(random, N * D, 1));
const table = Array.from(normal(random, V * D, 1));
const targets = [3, 1, 6, 3];

/** Plain-ops reference: softmax cross-entropy over items 1..V-1. */
function referenceLoss(s: tf.Tensor2D, t: tf.Tensor2D): tf.Scalar {
  const logits = tf.slice(tf.matMul(s, t, false, true), [0, 1], [N, V - 1]);
  const labels = tf.oneHot(tf.tensor1d(targets.map((x) => x - 1), 'int32'), V - 1);
  return tf.losses.softmaxCrossEntropy(labels, logits) as tf.Scalar;
}

function lossAndGrads(f: (s: tf.Tensor2D, t: tf.Tensor2D) => tf.Scalar): { loss: number; grads: number[][] } {
  return tf.tidy(() => {
    const s = tf.tensor2d(states, [N, D]);
    const t = tf.tensor2d(table, [V, D]);
    const { value, grads } = tf.valueAndGrads((a: tf.Tensor, b: tf.Tensor) => f(a as tf.Tensor2D, b as tf.Tensor2D))([s, t]);
    return { loss: value.dataSync()[0]!, grads: grads.map((g) => Array.from(g.dataSync())) };
  });
}

describe('losses', () => {
  afterAll(async () => {
    await selectBackend('wasm');
  });

  for (const backend of ['cpu', 'wasm'] as const) {
    it(`full softmax: value and gradients equal the reference (${backend})`, async () => {
      await selectBackend('cpu');
      const reference = lossAndGrads(referenceLoss);
      await selectBackend(backend);
      const fused = lossAndGrads((s, t) => fullSoftmaxLoss(s, t, tf.tensor1d(targets, 'int32')));
      expect(fused.loss).toBeCloseTo(reference.loss, 5);
      fused.grads.forEach((g, k) => g.forEach((v, i) => expect(v).toBeCloseTo(reference.grads[k]![i]!, 5)));
      // The padding row gets no gradient.
      expect(fused.grads[1]!.slice(0, D)).toEqual([0, 0, 0]);
    });
  }

  it('sampled softmax with every item as a negative and uniform q is the full softmax (wasm)', async () => {
    await selectBackend('cpu');
    const reference = lossAndGrads(referenceLoss);
    await selectBackend('wasm');
    const all = tf.tensor1d([1, 2, 3, 4, 5, 6], 'int32');
    const uniform = Math.log(1 / 6);
    const sampled = lossAndGrads((s, t) =>
      sampledSoftmaxLoss(s, t, tf.tensor1d(targets, 'int32'), all, tf.fill([N], uniform) as tf.Tensor1D, tf.fill([6], uniform) as tf.Tensor1D),
    );
    expect(sampled.loss).toBeCloseTo(reference.loss, 5);
    sampled.grads.forEach((g, k) => g.forEach((v, i) => expect(v).toBeCloseTo(reference.grads[k]![i]!, 5)));
  });
});

describe('NegativeSampler', () => {
  it('draws items in proportion to popularity^alpha and reports log q', () => {
    const counts = [0, 99, 0, 9, 0]; // items 1..4 → weights (c+1)^1 = 100, 1, 10, 1
    const sampler = new NegativeSampler(counts, 1);
    const rng = new Random(5);
    const draws = sampler.sample(() => rng.next(), 20_000);
    const freq = [0, 0, 0, 0, 0];
    for (const d of draws) freq[d]!++;
    expect(freq[0]).toBe(0);
    expect(freq[1]! / 20_000).toBeCloseTo(100 / 112, 1);
    expect(freq[3]! / 20_000).toBeCloseTo(10 / 112, 1);
    expect(sampler.logQ[1]).toBeCloseTo(Math.log(100 / 112), 5);
    const uniform = new NegativeSampler(counts, 0);
    expect(uniform.logQ[2]).toBeCloseTo(Math.log(1 / 4), 5);
  });
});
