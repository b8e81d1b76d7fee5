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
