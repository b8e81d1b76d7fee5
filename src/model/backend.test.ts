import * as tf from '@tensorflow/tfjs';
import { describe, expect, it } from 'vitest';
import { describeBackend, selectBackend } from './backend.js';

describe('selectBackend', () => {
  it('runs the best available backend and says why the better ones were passed over', async () => {
    const choice = await selectBackend();
    expect(['tensorflow-gpu', 'tensorflow', 'webgpu', 'wasm']).toContain(choice.name);
    expect(tf.getBackend()).toBe(choice.name.startsWith('tensorflow') ? 'tensorflow' : choice.name);
    // Everything before the chosen backend in the order was tried and explained.
    const order = ['tensorflow-gpu', 'tensorflow', 'webgpu', 'wasm', 'cpu'];
    expect(choice.skipped.map((s) => s.name)).toEqual(order.slice(0, order.indexOf(choice.name)));
    for (const skipped of choice.skipped) expect(skipped.reason.length).toBeGreaterThan(0);
    expect(describeBackend(choice)).toMatch(new RegExp(`^backend: ${choice.name}`));
    // The backend computes.
    expect(Array.from(tf.matMul(tf.tensor2d([[1, 2]]), tf.tensor2d([[3], [4]])).dataSync())).toEqual([11]);
  });

  it('an explicit webgpu preference either runs WebGPU or says why not, with a stable code', async () => {
    const outcome = await selectBackend('webgpu').then(
      (choice) => choice.name,
      (error: { code: string; message: string }) => `${error.code}: ${error.message}`,
    );
    expect(outcome).toMatch(/^(webgpu|BACKEND_UNAVAILABLE: no TensorFlow.js backend could start: webgpu: .+)$/);
  });

  it('honours an explicit preference', async () => {
    expect((await selectBackend('cpu')).name).toBe('cpu');
    expect(tf.getBackend()).toBe('cpu');
    expect((await selectBackend('wasm')).name).toBe('wasm');
    expect(tf.getBackend()).toBe('wasm');
  });
});

describe('wasm Identity', () => {
  it('shares the buffer of its input instead of copying it, and frees it with the last reference', async () => {
    await selectBackend('wasm');
    const backend = tf.backend() as unknown as { getMemoryOffset(id: object): number; refCount(id: object): number };
    const a = tf.tensor1d([1, 2, 3]);
    const b = tf.clone(a);
    expect(backend.getMemoryOffset(b.dataId)).toBe(backend.getMemoryOffset(a.dataId));
    a.dispose();
    expect(Array.from(b.dataSync())).toEqual([1, 2, 3]);
    b.dispose();
    expect(backend.refCount(b.dataId)).toBe(0);
    // Gradients that save their inputs (through Identity) still come out right.
    const grad = tf.grad((x: tf.Tensor) => tf.sum(tf.mul(x, x)))(tf.tensor1d([1, -2]));
    expect(Array.from(grad.dataSync())).toEqual([2, -4]);
  });
});
