import { instantiateKernel, layoutKernelMemory, type KernelMemory } from './kernel-module.js';

/**
 * The softmax step of the sampled softmax loss in the SIMD kernel
 * (kernels/sampled-softmax.ts → generated/kernels/sampled-softmax.wasm): per
 * position, the target's logit against its logits with S shared negatives,
 * each negative's logQ bias added and accidental hits (a negative equal to
 * the position's target) left out. Used by sampledSoftmaxLoss on the wasm
 * and cpu backends, where TensorFlow.js's element-wise ops over the
 * [N, S] logits cost ~7 ns an element each and the step needs seven.
 */
/** Views into the kernel's memory, valid until its next call: copy (or upload) what you keep. */
export interface SampledSoftmaxResult {
  /** [N, S]: each negative's softmax probability (0 for accidental hits). */
  readonly probabilities: Float32Array;
  /** [S, N]: the same, transposed (the layout the negatives' gradient matMul wants). */
  readonly transposed: Float32Array;
  /** [N]: each target's own probability. */
  readonly pPositive: Float32Array;
  /** Σ over positions of the cross-entropy −log pPositive. */
  readonly lossSum: number;
}

export interface SampledSoftmaxKernel {
  /** logits: [N, S] row-major (negatives only, no bias); positive: [N] target logits with their bias. */
  forward(logits: Float32Array, positive: Float32Array, negativeBias: Float32Array, targets: Int32Array, negatives: Int32Array): SampledSoftmaxResult;
}

interface Exports {
  readonly memory: KernelMemory;
  forward(n: number, s: number, logits: number, positive: number, negBias: number, targets: number, negatives: number, pPositive: number, transposed: number): number;
}

let loaded: SampledSoftmaxKernel | null | undefined;

/** The kernel, or null when it is not built (then the loss uses TensorFlow.js ops). */
export function sampledSoftmaxKernel(): SampledSoftmaxKernel | null {
  if (loaded === undefined) {
    const wasm = instantiateKernel<Exports>('sampled-softmax');
    loaded = wasm ? wrap(wasm) : null;
  }
  return loaded;
}

function wrap(wasm: Exports): SampledSoftmaxKernel {
  return {
    forward(logits, positive, negativeBias, targets, negatives) {
      const n = positive.length;
      const s = negativeBias.length;
      if (logits.length !== n * s || targets.length !== n || negatives.length !== s) throw new RangeError(`sampled softmax kernel: expected logits [${n}, ${s}], ${n} targets and ${s} negatives`);
      const [lo, po, bo, to, no, ppo, tro] = layoutKernelMemory(wasm.memory, [4 * n * s, 4 * n, 4 * s, 4 * n, 4 * s, 4 * n, 4 * n * s]) as [number, number, number, number, number, number, number];
      const buffer = wasm.memory.buffer;
      new Float32Array(buffer, lo, n * s).set(logits);
      new Float32Array(buffer, po, n).set(positive);
      new Float32Array(buffer, bo, s).set(negativeBias);
      new Int32Array(buffer, to, n).set(targets);
      new Int32Array(buffer, no, s).set(negatives);
      const lossSum = wasm.forward(n, s, lo, po, bo, to, no, ppo, tro);
      return {
        probabilities: new Float32Array(buffer, lo, n * s),
        transposed: new Float32Array(buffer, tro, n * s),
        pPositive: new Float32Array(buffer, ppo, n),
        lossSum,
      };
    },
  };
}
