import * as tf from '@tensorflow/tfjs';
import { afterAll, describe, expect, it } from 'vitest';
import { selectBackend } from '../model/backend.js';
import { normal } from '../model/init.js';
import { Random } from '../random.js';
import { bceLoss, fullSoftmaxLoss, gbceBeta, gbceLoss, NegativeSampler, sampledSoftmaxBatch, sampledSoftmaxLoss } from './losses.js';

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

  for (const implementation of ['kernel', 'ops'] as const) {
    it(`sampled softmax with every item as a negative and uniform q is the full softmax (wasm, ${implementation})`, async () => {
      await selectBackend('cpu');
      const reference = lossAndGrads(referenceLoss);
      await selectBackend('wasm');
      const all = [1, 2, 3, 4, 5, 6];
      const batch = sampledSoftmaxBatch(targets, all, new Float32Array(V).fill(Math.log(1 / 6)));
      const sampled = lossAndGrads((s, t) => sampledSoftmaxLoss(s, t, batch, { implementation }));
      expect(sampled.loss).toBeCloseTo(reference.loss, 5);
      sampled.grads.forEach((g, k) => g.forEach((v, i) => expect(v).toBeCloseTo(reference.grads[k]![i]!, 5)));
    });
  }

  it('the sampled softmax kernel gives the ops\' loss and gradients, lengths not multiples of 4 included', async () => {
    await selectBackend('wasm');
    const r = new Random(5);
    const [n, s, d, v] = [37, 51, 8, 300];
    const st = normal(r, n * d, 1);
    const tb = normal(r, v * d, 0.5);
    const batch = sampledSoftmaxBatch(
      Array.from({ length: n }, () => 1 + r.int(v - 1)),
      Array.from({ length: s }, (_, j) => (j % 7 === 0 ? 1 + (j % 40) : 1 + r.int(v - 1))), // some hits
      Float32Array.from({ length: v }, () => Math.log(0.5 + r.next()) - 6),
    );
    const run = (implementation: 'kernel' | 'ops') =>
      tf.tidy(() => {
        const { value, grads } = tf.valueAndGrads((a: tf.Tensor, b: tf.Tensor) => sampledSoftmaxLoss(a as tf.Tensor2D, b as tf.Tensor2D, batch, { implementation }))([tf.tensor2d(st, [n, d]), tf.tensor2d(tb, [v, d])]);
        return { loss: value.dataSync()[0]!, grads: grads.map((g) => Array.from(g.dataSync())) };
      });
    const kernel = run('kernel');
    const ops = run('ops');
    expect(kernel.loss).toBeCloseTo(ops.loss, 5);
    kernel.grads.forEach((g, k) => g.forEach((value, i) => expect(value).toBeCloseTo(ops.grads[k]![i]!, 6)));
  });
});

describe('binary losses', () => {
  const softplus = (x: number): number => Math.log1p(Math.exp(x));
  const dot = (i: number, item: number): number => [0, 1, 2].reduce((sum, d) => sum + states[i * D + d]! * table[item * D + d]!, 0);

  it('BCE with one negative per position: softplus(-s+) + softplus(s-), mean over positions', async () => {
    await selectBackend('wasm');
    const negatives = [2, 5, 1, 4];
    const expected = targets.reduce((sum, t, i) => sum + softplus(-dot(i, t)) + softplus(dot(i, negatives[i]!)), 0) / N;
    const { loss } = lossAndGrads((s, t) => bceLoss(s, t, tf.tensor1d(targets, 'int32'), tf.tensor1d(negatives, 'int32')));
    expect(loss).toBeCloseTo(expected, 5);
  });

  it('gBCE: β·softplus(-s+) plus softplus of each position\'s own negatives', async () => {
    await selectBackend('wasm');
    const negatives = [2, 5, /**/ 3, 4, /**/ 1, 2, /**/ 6, 5]; // k = 2 per position
    const beta = 0.4;
    const expected = targets.reduce((sum, t, i) => sum + beta * softplus(-dot(i, t)) + softplus(dot(i, negatives[2 * i]!)) + softplus(dot(i, negatives[2 * i + 1]!)), 0) / N;
    const { loss, grads } = lossAndGrads((s, t) => gbceLoss(s, t, tf.tensor1d(targets, 'int32'), tf.tensor1d(negatives, 'int32'), beta));
    expect(loss).toBeCloseTo(expected, 5);
    expect(grads[1]!.slice(0, D)).toEqual([0, 0, 0]); // padding row untouched
  });

  it('gBCE calibration: t = 0 is plain BCE (β = 1), t = 1 gives β = the sampling rate', () => {
    expect(gbceBeta(256, 1001, 0)).toBeCloseTo(1, 10);
    expect(gbceBeta(256, 1001, 1)).toBeCloseTo(256 / 1000, 10);
    expect(gbceBeta(256, 1001, 0.75)).toBeCloseTo(0.256 * (0.75 * (1 - 1000 / 256) + 1000 / 256), 10);
  });
});

describe('sampled softmax batch', () => {
  it('applies -log q to each target and each negative', () => {
    const logQ = Float32Array.from([0, Math.log(0.5), Math.log(0.25), Math.log(0.25)]);
    const { targetBias, negativeBias } = sampledSoftmaxBatch([1, 2], [2, 3], logQ);
    expect(Array.from(targetBias)).toEqual([-Math.fround(Math.log(0.5)), -Math.fround(Math.log(0.25))].map(Math.fround));
    expect(Array.from(negativeBias)).toEqual([-Math.fround(Math.log(0.25)), -Math.fround(Math.log(0.25))].map(Math.fround));
  });

  for (const implementation of ['kernel', 'ops'] as const) {
    it(`leaves a negative that equals the row's target out of that row's softmax (accidental hit, ${implementation})`, async () => {
      await selectBackend('wasm');
      const negatives = [3, 5]; // 3 is the target of rows 0 and 3
      const logQ = Float32Array.from({ length: V }, (_, i) => Math.log(i / 21)); // distinct biases, so their placement shows
      const dot = (i: number, item: number): number => [0, 1, 2].reduce((sum, d) => sum + states[i * D + d]! * table[item * D + d]!, 0);
      const expected =
        targets.reduce((sum, t, i) => {
          const logits = [t, ...negatives.filter((n) => n !== t)].map((item) => dot(i, item) - Math.fround(logQ[item]!));
          const max = Math.max(...logits);
          return sum + max + Math.log(logits.reduce((z, l) => z + Math.exp(l - max), 0)) - logits[0]!;
        }, 0) / N;
      const { loss } = lossAndGrads((s, t) => sampledSoftmaxLoss(s, t, sampledSoftmaxBatch(targets, negatives, logQ), { implementation }));
      expect(loss).toBeCloseTo(expected, 5);
    });
  }
});

describe('sampled softmax with a target window', () => {
  const dot = (i: number, item: number): number => [0, 1, 2].reduce((sum, d) => sum + states[i * D + d]! * table[item * D + d]!, 0);
  // Two targets per position (0: an empty slot), the second weighted 0.5.
  const windowTargets = [3, 2, /**/ 1, 0, /**/ 6, 5, /**/ 3, 4];
  const windowWeights = [1, 0.5, /**/ 1, 0, /**/ 1, 0.5, /**/ 1, 0.5];
  const negatives = [3, 5, 2, 4]; // hits: row 0 (3, 2), row 2 (5), row 3 (3, 4)
  const logQ = Float32Array.from({ length: V }, (_, i) => Math.log((i + 1) / 28));

  for (const implementation of ['kernel', 'ops'] as const) {
    it(`is the weighted mean of one softmax per target, a negative equal to any of the row's targets left out (${implementation})`, async () => {
      await selectBackend('wasm');
      let weighted = 0;
      let totalWeight = 0;
      for (let i = 0; i < N; i++) {
        const row = windowTargets.slice(2 * i, 2 * i + 2);
        const kept = negatives.filter((n) => !row.some((t, j) => t === n && windowWeights[2 * i + j]! > 0));
        row.forEach((t, j) => {
          const w = windowWeights[2 * i + j]!;
          if (w === 0) return;
          const logits = [t, ...kept].map((item) => dot(i, item) - Math.fround(logQ[item]!));
          const max = Math.max(...logits);
          weighted += w * (max + Math.log(logits.reduce((z, l) => z + Math.exp(l - max), 0)) - logits[0]!);
          totalWeight += w;
        });
      }
      const batch = sampledSoftmaxBatch(windowTargets, negatives, logQ, { width: 2, weights: windowWeights });
      const { loss } = lossAndGrads((s, t) => sampledSoftmaxLoss(s, t, batch, { implementation }));
      expect(loss).toBeCloseTo(weighted / totalWeight, 5);
    });
  }

  it('gives the same gradients in the kernel and with ops, and those of autodiff through the plain formula', async () => {
    await selectBackend('wasm');
    const r = new Random(9);
    const [n, k, s, d, v] = [23, 3, 41, 8, 200];
    const st = normal(r, n * d, 1);
    const tb = normal(r, v * d, 0.5);
    const rowTargets = Array.from({ length: n * k }, (_, i) => (i % k === 2 && i % 5 === 0 ? 0 : 1 + r.int(v - 1)));
    const rowWeights = rowTargets.map((t, i) => (t === 0 ? 0 : 0.6 ** (i % k)));
    const negs = Array.from({ length: s }, (_, j) => (j % 6 === 0 ? rowTargets[j]! || 7 : 1 + r.int(v - 1))); // some hits
    const bias = Float32Array.from({ length: v }, () => Math.log(0.5 + r.next()) - 5);
    const batch = sampledSoftmaxBatch(rowTargets, negs, bias, { width: k, weights: rowWeights });
    // Autodiff reference: per target a softmax over [target | the row's kept negatives], built from plain ops.
    const reference = (x: tf.Tensor2D, t: tf.Tensor2D): tf.Scalar => {
      const terms: tf.Scalar[] = [];
      let total = 0;
      for (let i = 0; i < n; i++) {
        const row = rowTargets.slice(i * k, i * k + k);
        const kept = negs.filter((m) => !row.some((t2, j) => t2 === m && rowWeights[i * k + j]! > 0));
        row.forEach((target, j) => {
          const w = rowWeights[i * k + j]!;
          if (w === 0) return;
          const items = [target, ...kept];
          const rows = tf.gather(t, tf.tensor1d(items, 'int32'));
          const logits = tf.sub(tf.squeeze(tf.matMul(tf.slice(x, [i, 0], [1, d]), rows, false, true)), tf.tensor1d(items.map((m) => bias[m]!)));
          terms.push(tf.mul(tf.sub(tf.logSumExp(logits), tf.slice(logits, [0], [1]).squeeze()), w) as tf.Scalar);
          total += w;
        });
      }
      return tf.div(tf.addN(terms), total) as tf.Scalar;
    };
    const run = (f: (x: tf.Tensor2D, t: tf.Tensor2D) => tf.Scalar) =>
      tf.tidy(() => {
        const { value, grads } = tf.valueAndGrads((a: tf.Tensor, b: tf.Tensor) => f(a as tf.Tensor2D, b as tf.Tensor2D))([tf.tensor2d(st, [n, d]), tf.tensor2d(tb, [v, d])]);
        return { loss: value.dataSync()[0]!, grads: grads.map((g) => Array.from(g.dataSync())) };
      });
    await selectBackend('cpu');
    const expected = run(reference);
    await selectBackend('wasm');
    for (const implementation of ['kernel', 'ops'] as const) {
      const got = run((x, t) => sampledSoftmaxLoss(x, t, batch, { implementation }));
      expect(got.loss).toBeCloseTo(expected.loss, 5);
      got.grads.forEach((g, gi) => g.forEach((value, i) => expect(value).toBeCloseTo(expected.grads[gi]![i]!, 5)));
    }
  });

  it('with one target of weight 1 per position is the plain sampled softmax, bit for bit', async () => {
    await selectBackend('wasm');
    const negs = [2, 5, 4];
    const logQ = Float32Array.from({ length: V }, (_, i) => Math.log((i + 1) / 28));
    const plain = lossAndGrads((s, t) => sampledSoftmaxLoss(s, t, sampledSoftmaxBatch(targets, negs, logQ)));
    const windowed = lossAndGrads((s, t) => sampledSoftmaxLoss(s, t, sampledSoftmaxBatch(targets, negs, logQ, { width: 1, weights: [1, 1, 1, 1] })));
    expect(windowed).toEqual(plain);
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
