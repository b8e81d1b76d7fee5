import * as tf from '@tensorflow/tfjs';
import { afterAll, describe, expect, it } from 'vitest';
import { Random } from '../random.js';
import { selectBackend } from './backend.js';
import { normal } from './init.js';
import { attention } from './attention.js';

const P = 3;
const T = 4;
const DK = 2;
const random = new Random(21);
const q = Array.from(normal(random, P * T * DK, 1));
const k = Array.from(normal(random, P * T * DK, 1));
const v = Array.from(normal(random, P * T * DK, 1));
const up = Array.from(normal(random, P * T * DK, 1));
// Causal mask, and in pair 2 the first key is padding.
const maskValues: number[] = [];
for (let p = 0; p < P; p++) for (let t = 0; t < T; t++) for (let s = 0; s < T; s++) maskValues.push(s > t || (p === 2 && s === 0) ? -1e9 : 0);

/** Reference: the same maths with tfjs's own batched ops and autodiff. */
function reference(qt: tf.Tensor, kt: tf.Tensor, vt: tf.Tensor, mask: tf.Tensor): tf.Tensor {
  const scores = tf.add(tf.div(tf.matMul(qt, kt, false, true), Math.sqrt(DK)), mask);
  return tf.matMul(tf.softmax(scores), vt);
}

function run(which: 'custom' | 'reference'): { out: number[]; grads: number[][] } {
  return tf.tidy(() => {
    const mask = tf.tensor3d(maskValues, [P, T, T]);
    const f = (a: tf.Tensor, b: tf.Tensor, c: tf.Tensor): tf.Tensor => {
      const out = which === 'custom' ? attention(a as tf.Tensor3D, b as tf.Tensor3D, c as tf.Tensor3D, mask).context : reference(a, b, c, mask);
      return tf.sum(tf.mul(out, tf.tensor3d(up, [P, T, DK])));
    };
    const inputs = [q, k, v].map((x) => tf.tensor3d(x, [P, T, DK]));
    const out = which === 'custom' ? attention(inputs[0] as tf.Tensor3D, inputs[1] as tf.Tensor3D, inputs[2] as tf.Tensor3D, mask).context : reference(inputs[0]!, inputs[1]!, inputs[2]!, mask);
    const grads = tf.grads(f)(inputs);
    return { out: Array.from(out.dataSync()), grads: grads.map((g) => Array.from(g.dataSync())) };
  });
}

describe('attention', () => {
  afterAll(async () => {
    await selectBackend('wasm');
  });

  it('matches the batched reference and its autodiff gradients (cpu as reference, wasm under test)', async () => {
    await selectBackend('cpu');
    const expected = run('reference');
    for (const backend of ['cpu', 'wasm'] as const) {
      await selectBackend(backend);
      const actual = run('custom');
      actual.out.forEach((x, i) => expect(x).toBeCloseTo(expected.out[i]!, 5));
      actual.grads.forEach((g, n) => g.forEach((x, i) => expect(x).toBeCloseTo(expected.grads[n]![i]!, 5)));
    }
  });

  it('keeps no weights unless asked: a training step inside tidy leaks nothing', async () => {
    await selectBackend('wasm');
    const mask = tf.tensor3d(maskValues, [P, T, T]);
    const inputs = [q, k, v].map((x) => tf.tensor3d(x, [P, T, DK]));
    const before = tf.memory().numTensors;
    tf.tidy(() => {
      tf.grads((a: tf.Tensor, b: tf.Tensor, c: tf.Tensor) => tf.sum(attention(a as tf.Tensor3D, b as tf.Tensor3D, c as tf.Tensor3D, mask).context))(inputs);
    });
    expect(tf.memory().numTensors).toBe(before);
  });

  it('returns weights that respect the mask and sum to 1', async () => {
    await selectBackend('wasm');
    const mask = tf.tensor3d(maskValues, [P, T, T]);
    const { weights } = attention(tf.tensor3d(q, [P, T, DK]), tf.tensor3d(k, [P, T, DK]), tf.tensor3d(v, [P, T, DK]), mask, true);
    const w = weights!.arraySync();
    weights!.dispose();
    w[2]!.slice(1).forEach((row, t) => {
      expect(row.reduce((a, b) => a + b, 0)).toBeCloseTo(1, 5);
      expect(row[0]).toBeLessThan(1e-6); // padding key
      row.forEach((x, s) => s > t + 1 && expect(x).toBeLessThan(1e-6)); // future keys
    });
  });
});
