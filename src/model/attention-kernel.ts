import { layoutKernelMemory, sharedKernel, type KernelMemory } from './kernel-module.js';

/**
 * The compiled causal-attention kernel (kernels/attention.ts → 
 * generated/kernels/attention.wasm): forward and backward passes over
 * [pairs, T, D] float32 arrays, on the CPU, with 128-bit SIMD, computing
 * only the visible (causal, non-padding) pairs. Used by the attention op on
 * the wasm and cpu backends, where reading tensors into JavaScript is a
 * memory copy; GPU backends keep TensorFlow.js's own ops.
 */
export interface AttentionShape {
  readonly pairs: number;
  readonly heads: number;
  readonly length: number;
  readonly depth: number;
}

export interface AttentionKernel {
  /** keep: [pairs / heads, length], 1 for real events. */
  forward(shape: AttentionShape, q: Float32Array, k: Float32Array, v: Float32Array, keep: Float32Array, withWeights: boolean): { out: Float32Array; weights?: Float32Array };
  backward(shape: AttentionShape, q: Float32Array, k: Float32Array, v: Float32Array, keep: Float32Array, dOut: Float32Array): { dQ: Float32Array; dK: Float32Array; dV: Float32Array };
}

interface Exports {
  readonly memory: KernelMemory;
  forward(pairs: number, heads: number, T: number, d: number, scale: number, q: number, k: number, v: number, keep: number, out: number, weights: number, scratch: number): void;
  backward(pairs: number, heads: number, T: number, d: number, scale: number, q: number, k: number, v: number, keep: number, dOut: number, dQ: number, dK: number, dV: number, scratch: number): void;
}

/** The kernel, or null when it is not built (then callers use TensorFlow.js ops). */
export const attentionKernel = sharedKernel<Exports, AttentionKernel>('attention', wrap);

function wrap(wasm: Exports): AttentionKernel {
  /** Lays out arrays of the given float counts (16-byte aligned), growing memory as needed. */
  const layout = (counts: number[]): number[] => layoutKernelMemory(wasm.memory, counts.map((n) => n * 4));
  const put = (offset: number, values: Float32Array): void => new Float32Array(wasm.memory.buffer, offset, values.length).set(values);
  const take = (offset: number, n: number): Float32Array => new Float32Array(wasm.memory.buffer, offset, n).slice();
  const check = ({ pairs, heads, length, depth }: AttentionShape, arrays: Float32Array[], keep: Float32Array): number => {
    const n = pairs * length * depth;
    if (depth % 4 !== 0) throw new RangeError(`attention kernel needs a head depth divisible by 4; got ${depth}`);
    if (pairs % heads !== 0 || keep.length !== (pairs / heads) * length) throw new RangeError('attention kernel: keep must be [pairs / heads, length]');
    for (const a of arrays) if (a.length !== n) throw new RangeError(`attention kernel: expected ${n} values, got ${a.length}`);
    return n;
  };
  return {
    forward(shape, q, k, v, keep, withWeights) {
      const n = check(shape, [q, k, v], keep);
      const { pairs, heads, length, depth } = shape;
      const weightsCount = withWeights ? pairs * length * length : 0;
      const [qo, ko, vo, keepo, outo, wo, scratch] = layout([n, n, n, keep.length, n, weightsCount, length]) as [number, number, number, number, number, number, number];
      put(qo, q);
      put(ko, k);
      put(vo, v);
      put(keepo, keep);
      wasm.forward(pairs, heads, length, depth, 1 / Math.sqrt(depth), qo, ko, vo, keepo, outo, withWeights ? wo : 0, scratch);
      return withWeights ? { out: take(outo, n), weights: take(wo, weightsCount) } : { out: take(outo, n) };
    },
    backward(shape, q, k, v, keep, dOut) {
      const n = check(shape, [q, k, v, dOut], keep);
      const { pairs, heads, length, depth } = shape;
      const [qo, ko, vo, keepo, go, dqo, dko, dvo, scratch] = layout([n, n, n, keep.length, n, n, n, n, 2 * length]) as [number, number, number, number, number, number, number, number, number];
      put(qo, q);
      put(ko, k);
      put(vo, v);
      put(keepo, keep);
      put(go, dOut);
      wasm.backward(pairs, heads, length, depth, 1 / Math.sqrt(depth), qo, ko, vo, keepo, go, dqo, dko, dvo, scratch);
      return { dQ: take(dqo, n), dK: take(dko, n), dV: take(dvo, n) };
    },
  };
}
