import * as tf from '@tensorflow/tfjs';
import { afterAll, describe, expect, it } from 'vitest';
import { Random } from '../random.js';
import { selectBackend } from './backend.js';
import { normal } from './init.js';
import { attention, type AttentionMask } from './attention.js';
import { attentionKernel } from './attention-kernel.js';

const HEADS = 2;
const BATCH = 2;
const P = BATCH * HEADS;
const T = 5;
const DK = 8;
const random = new Random(21);
const q = Array.from(normal(random, P * T * DK, 1));
const k = Array.from(normal(random, P * T * DK, 1));
const v = Array.from(normal(random, P * T * DK, 1));
const up = Array.from(normal(random, P * T * DK, 1));
// Batch row 0 is left-padded (two padding positions); row 1 has a padding hole at position 1.
const mask: AttentionMask = { keep: Float32Array.from([0, 0, 1, 1, 1, /**/ 1, 0, 1, 1, 1]), heads: HEADS };

/** Reference: the same maths with plain tfjs ops and autodiff. */
function reference(qt: tf.Tensor, kt: tf.Tensor, vt: tf.Tensor): tf.Tensor {
  const additive: number[] = [];
  const rowVisible: number[] = [];
  for (let p = 0; p < P; p++) {
    const b = Math.floor(p / HEADS);
    for (let t = 0; t < T; t++) {
      let any = 0;
      for (let s = 0; s < T; s++) {
        const visible = s <= t && mask.keep[b * T + s] === 1;
        additive.push(visible ? 0 : -1e9);
        any ||= visible ? 1 : 0;
      }
      rowVisible.push(any);
    }
  }
  const scores = tf.add(tf.div(tf.matMul(qt, kt, false, true), Math.sqrt(DK)), tf.tensor3d(additive, [P, T, T]));
  return tf.matMul(tf.mul(tf.softmax(scores), tf.tensor3d(rowVisible, [P, T, 1])), vt);
}

function run(which: 'kernel' | 'ops' | 'reference'): { out: number[]; grads: number[][] } {
  return tf.tidy(() => {
    const forward = (a: tf.Tensor, b: tf.Tensor, c: tf.Tensor): tf.Tensor =>
      which === 'reference' ? reference(a, b, c) : attention(a as tf.Tensor3D, b as tf.Tensor3D, c as tf.Tensor3D, mask, { implementation: which }).context;
    const inputs = [q, k, v].map((x) => tf.tensor3d(x, [P, T, DK]));
    const out = forward(inputs[0]!, inputs[1]!, inputs[2]!);
    const grads = tf.grads((a: tf.Tensor, b: tf.Tensor, c: tf.Tensor) => tf.sum(tf.mul(forward(a, b, c), tf.tensor3d(up, [P, T, DK]))))(inputs);
    return { out: Array.from(out.dataSync()), grads: grads.map((g) => Array.from(g.dataSync())) };
  });
}

describe('attention', () => {
  afterAll(async () => {
    await selectBackend('wasm');
  });

  it('the kernel is built (npm install runs scripts/build-kernels.ts)', () => {
    expect(attentionKernel()).not.toBeNull();
  });

  for (const implementation of ['kernel', 'ops'] as const) {
    it(`${implementation}: output and gradients equal autodiff of the reference ops (cpu reference; cpu and wasm under test)`, async () => {
      await selectBackend('cpu');
      const expected = run('reference');
      for (const backend of ['cpu', 'wasm'] as const) {
        await selectBackend(backend);
        const actual = run(implementation);
        actual.out.forEach((x, i) => expect(x).toBeCloseTo(expected.out[i]!, 5));
        actual.grads.forEach((g, n) => g.forEach((x, i) => expect(x).toBeCloseTo(expected.grads[n]![i]!, 5)));
      }
    });
  }

  it('kernel gradient agrees with central finite differences', async () => {
    await selectBackend('cpu');
    const loss = (qv: number[]): number =>
      tf.tidy(() => tf.sum(tf.mul(attention(tf.tensor3d(qv, [P, T, DK]), tf.tensor3d(k, [P, T, DK]), tf.tensor3d(v, [P, T, DK]), mask, { implementation: 'kernel' }).context, tf.tensor3d(up, [P, T, DK]))).dataSync()[0]!);
    const analytic = run('kernel').grads[0]!;
    const h = 1e-2;
    for (const i of [DK * 2 + 1, DK * 4 + 3, P * T * DK - 1, T * DK + 5]) {
      const plus = [...q];
      const minus = [...q];
      plus[i]! += h;
      minus[i]! -= h;
      expect((loss(plus) - loss(minus)) / (2 * h)).toBeCloseTo(analytic[i]!, 2);
    }
  });

  for (const implementation of ['kernel', 'ops'] as const) {
    it(`${implementation}: weights respect the causal and padding mask and rows sum to 1 (0 for queries that see nothing)`, async () => {
      await selectBackend('wasm');
      const { weights, context } = attention(tf.tensor3d(q, [P, T, DK]), tf.tensor3d(k, [P, T, DK]), tf.tensor3d(v, [P, T, DK]), mask, { returnWeights: true, implementation });
      const w = weights!.arraySync();
      const c = context.arraySync();
      weights!.dispose();
      for (let p = 0; p < P; p++) {
        const b = Math.floor(p / HEADS);
        w[p]!.forEach((row, t) => {
          const seesAnything = row.some((_, s) => s <= t && mask.keep[b * T + s] === 1);
          expect(row.reduce((a, x) => a + x, 0)).toBeCloseTo(seesAnything ? 1 : 0, 5);
          row.forEach((x, s) => (s > t || mask.keep[b * T + s] === 0) && expect(x).toBe(0));
          if (!seesAnything) expect(c[p]![t]!.every((x) => x === 0)).toBe(true);
        });
      }
    });
  }

  it('keeps no tensors unless asked: a training step inside tidy leaks nothing', async () => {
    await selectBackend('wasm');
    const inputs = [q, k, v].map((x) => tf.tensor3d(x, [P, T, DK]));
    for (const implementation of ['kernel', 'ops'] as const) {
      const before = tf.memory().numTensors;
      tf.tidy(() => {
        tf.grads((a: tf.Tensor, b: tf.Tensor, c: tf.Tensor) => tf.sum(attention(a as tf.Tensor3D, b as tf.Tensor3D, c as tf.Tensor3D, mask, { implementation }).context))(inputs);
      });
      expect(tf.memory().numTensors).toBe(before);
    }
  });
});
