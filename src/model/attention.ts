import * as tf from '@tensorflow/tfjs';
import { attentionKernel } from './attention-kernel.js';

/**
 * Causal scaled dot-product attention as one op with a hand-written gradient.
 * q, k, v: [pairs, T, dk], pairs = batch × heads in batch-major order (pair
 * p is batch row p / heads). Query t sees key s iff s <= t and key s is a
 * real event (mask.keep); a query that sees nothing (left padding) gets a
 * zero context and zero weights. Returns the context [pairs, T, dk] and,
 * when asked for, the weights [pairs, T, T] (kept outside any tidy scope:
 * the caller disposes them).
 *
 * Two implementations of the same maths:
 * - 'kernel': the SIMD WebAssembly kernel (kernels/attention.ts), which
 *   computes only the visible half of each T × T product. On the wasm and
 *   cpu backends it replaces tfjs's batched matMul, a naive loop there.
 * - 'ops': TensorFlow.js ops (batched matMuls, softmax) with the gradient
 *   written out; used on GPU backends, where reading tensors back to the CPU
 *   would cost more than it saves, and as the reference in tests.
 */
export interface AttentionMask {
  /** [batch, T] row-major: 1 for a real event, 0 for padding. */
  readonly keep: Float32Array;
  readonly heads: number;
}

export interface AttentionOptions {
  readonly returnWeights?: boolean;
  /** 'auto': the kernel on the wasm and cpu backends when it is built, else ops. */
  readonly implementation?: 'auto' | 'kernel' | 'ops';
}

export function attention(q: tf.Tensor3D, k: tf.Tensor3D, v: tf.Tensor3D, mask: AttentionMask, options: AttentionOptions = {}): { context: tf.Tensor3D; weights?: tf.Tensor3D } {
  const [pairs, T, dk] = q.shape;
  const kernel = attentionKernel();
  const wanted = options.implementation ?? 'auto';
  const useKernel = wanted === 'kernel' || (wanted === 'auto' && kernel !== null && dk % 4 === 0 && ['wasm', 'cpu'].includes(tf.getBackend()));
  if (useKernel && !kernel) throw new Error('the attention kernel is not built: run `npm run build:kernels`');
  const returnWeights = options.returnWeights === true;
  let weightsOut: tf.Tensor3D | undefined;
  const shape = { pairs, heads: mask.heads, length: T, depth: dk };

  if (useKernel) {
    const op = tf.customGrad((...args: (tf.Tensor | tf.GradSaveFunc)[]) => {
      const [qi, ki, vi, save] = args as [tf.Tensor3D, tf.Tensor3D, tf.Tensor3D, tf.GradSaveFunc];
      const { out, weights } = kernel!.forward(shape, floats(qi), floats(ki), floats(vi), mask.keep, returnWeights);
      if (weights) weightsOut = tf.keep(tf.tensor3d(weights, [pairs, T, T]));
      save([qi, ki, vi]);
      return {
        value: tf.tensor3d(out, [pairs, T, dk]),
        gradFunc: (dy: tf.Tensor | tf.Tensor[], saved: tf.Tensor[]) => {
          const [qs, ks, vs] = saved as [tf.Tensor3D, tf.Tensor3D, tf.Tensor3D];
          const { dQ, dK, dV } = kernel!.backward(shape, floats(qs), floats(ks), floats(vs), mask.keep, floats(dy as tf.Tensor));
          return [tf.tensor3d(dQ, [pairs, T, dk]), tf.tensor3d(dK, [pairs, T, dk]), tf.tensor3d(dV, [pairs, T, dk])];
        },
      };
    });
    const context = op(q, k, v) as tf.Tensor3D;
    return weightsOut ? { context, weights: weightsOut } : { context };
  }

  const scale = 1 / Math.sqrt(dk);
  const { additive, rowVisible } = maskTensors(mask, pairs, T);
  const op = tf.customGrad((...args: (tf.Tensor | tf.GradSaveFunc)[]) => {
    const [qi, ki, vi, save] = args as [tf.Tensor3D, tf.Tensor3D, tf.Tensor3D, tf.GradSaveFunc];
    const scores = tf.add(tf.mul(tf.matMul(qi, transposeLast(ki)), scale), additive) as tf.Tensor3D; // [P, T, T]
    const weights = tf.mul(tf.softmax(scores), rowVisible) as tf.Tensor3D; // rows that see nothing: zeros
    // The op's scope disposes everything but its value; weights survive only when asked for (then the caller owns them).
    if (returnWeights) weightsOut = tf.keep(weights);
    save([qi, ki, vi, weights]);
    return {
      value: tf.matMul(weights, vi), // [P, T, dk]
      gradFunc: (dy: tf.Tensor | tf.Tensor[], saved: tf.Tensor[]) => {
        const dOut = dy as tf.Tensor3D;
        const [qs, ks, vs, a] = saved as [tf.Tensor3D, tf.Tensor3D, tf.Tensor3D, tf.Tensor3D];
        const dA = tf.matMul(dOut, transposeLast(vs)); // [P, T, T]
        // Softmax backward: dS = A ⊙ (dA − Σ_j dA ⊙ A), then the 1/√dk scale.
        const dS = tf.mul(tf.mul(a, tf.sub(dA, tf.sum(tf.mul(dA, a), -1, true))), scale) as tf.Tensor3D;
        return [tf.matMul(dS, ks), tf.matMul(transposeLast(dS), qs), tf.matMul(transposeLast(a), dOut)];
      },
    };
  });
  const context = op(q, k, v) as tf.Tensor3D;
  return weightsOut ? { context, weights: weightsOut } : { context };
}

/** A large negative rather than -Infinity: a fully masked row stays finite. */
const MASKED = -1e9;

/**
 * The additive mask [P, T, T] and the per-row "sees anything" factor [P, T, 1]
 * of the ops path, built on the backend's device from the [batch, T] keep
 * row: only batch × T values travel, not a P × T × T array.
 */
function maskTensors(mask: AttentionMask, pairs: number, T: number): { additive: tf.Tensor3D; rowVisible: tf.Tensor3D } {
  return tf.tidy(() => {
    const batch = pairs / mask.heads;
    const causal = tf.reshape(tf.linalg.bandPart(tf.ones([T, T]), -1, 0), [1, 1, T, T]); // s <= t
    const keep = tf.reshape(tf.tensor2d(mask.keep, [batch, T]), [batch, 1, 1, T]);
    const visible = tf.reshape(tf.tile(tf.mul(causal, keep), [1, mask.heads, 1, 1]), [pairs, T, T]);
    return {
      additive: tf.mul(tf.sub(1, visible), MASKED) as tf.Tensor3D,
      rowVisible: tf.cast(tf.greater(tf.sum(visible, -1, true), 0), 'float32') as tf.Tensor3D,
    };
  });
}

function floats(x: tf.Tensor): Float32Array {
  return x.dataSync() as Float32Array;
}

function transposeLast(x: tf.Tensor3D): tf.Tensor3D {
  return tf.transpose(x, [0, 2, 1]);
}
