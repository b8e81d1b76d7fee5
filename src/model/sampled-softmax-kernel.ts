import { layoutKernelMemory, sharedKernel, type KernelMemory } from './kernel-module.js';

/**
 * The softmax step of the sampled softmax loss in the SIMD kernel
 * (kernels/sampled-softmax.ts → generated/kernels/sampled-softmax.wasm): per
 * position, each of its K weighted targets' logits against its logits with S
 * shared negatives (one softmax per target, sharing the negatives' terms),
 * each negative's logQ bias added and accidental hits (a negative equal to
 * one of the position's targets) left out. Used by sampledSoftmaxLoss on the
 * wasm backend, where TensorFlow.js's element-wise ops over the [N, S]
 * logits cost ~7 ns an element each and the step needs seven.
 */
/** Views into the kernel's memory, valid until its next call: copy (or upload) what you keep. */
export interface SampledSoftmaxResult {
  /**
   * [N, S]: the gradient of each row's weighted cross-entropy with respect to
   * each negative's logit, exp(logit) · Σ_j weight_j / Z_j (with one target of
   * weight 1: the negative's softmax probability); 0 for accidental hits.
   */
  readonly probabilities: Float32Array;
  /** [S, N]: the same, transposed (the layout the negatives' gradient matMul wants). */
  readonly transposed: Float32Array;
  /** [N, K]: each target's own probability (0 where its weight is 0). */
  readonly pPositive: Float32Array;
  /** Σ over positions and targets of weight × the cross-entropy −log pPositive. */
  readonly lossSum: number;
}

export interface SampledSoftmaxKernel {
  /**
   * logits: [N, S] row-major (negatives only, no bias); positive, weights, targets: [N, K]
   * row-major, the target logits with their bias, their weights (0: an empty slot) and items.
   */
  forward(logits: Float32Array, positive: Float32Array, weights: Float32Array, negativeBias: Float32Array, targets: Int32Array, negatives: Int32Array): SampledSoftmaxResult;
}

interface Exports {
  readonly memory: KernelMemory;
  forward(n: number, s: number, k: number, logits: number, positive: number, weights: number, negBias: number, targets: number, negatives: number, pPositive: number, transposed: number): number;
}

/** The kernel, or null when it is not built (then the loss uses TensorFlow.js ops). */
export const sampledSoftmaxKernel = sharedKernel<Exports, SampledSoftmaxKernel>('sampled-softmax', wrap);

function wrap(wasm: Exports): SampledSoftmaxKernel {
  return {
    forward(logits, positive, weights, negativeBias, targets, negatives) {
      const s = negativeBias.length;
      const n = s > 0 ? logits.length / s : 0;
      const k = n > 0 ? positive.length / n : 0;
      if (!Number.isInteger(n) || !Number.isInteger(k) || k < 1 || weights.length !== n * k || targets.length !== n * k || negatives.length !== s) {
        throw new RangeError(`sampled softmax kernel: expected logits [N, ${s}] and positive, weights and targets [N, K]`);
      }
      const [lo, po, wo, bo, to, no, ppo, tro] = layoutKernelMemory(wasm.memory, [4 * n * s, 4 * n * k, 4 * n * k, 4 * s, 4 * n * k, 4 * s, 4 * n * k, 4 * n * s]) as [number, number, number, number, number, number, number, number];
      const buffer = wasm.memory.buffer;
      new Float32Array(buffer, lo, n * s).set(logits);
      new Float32Array(buffer, po, n * k).set(positive);
      new Float32Array(buffer, wo, n * k).set(weights);
      new Float32Array(buffer, bo, s).set(negativeBias);
      new Int32Array(buffer, to, n * k).set(targets);
      new Int32Array(buffer, no, s).set(negatives);
      const lossSum = wasm.forward(n, s, k, lo, po, wo, bo, to, no, ppo, tro);
      return {
        probabilities: new Float32Array(buffer, lo, n * s),
        transposed: new Float32Array(buffer, tro, n * s),
        pPositive: new Float32Array(buffer, ppo, n * k),
        lossSum,
      };
    },
  };
}
