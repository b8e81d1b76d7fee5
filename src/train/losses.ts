import * as tf from '@tensorflow/tfjs';
import { dense, embeddingLookup } from '../model/ops.js';

/**
 * Next-item losses over the item table, which doubles as the output layer.
 * `states` [N, dim] are the hidden states of the N positions that have a
 * target (padding already removed); `targets` [N] are item indices 1..V-1.
 */

/** Masked logits: large and negative, finite so that softmax rows stay finite. */
const MASKED = -1e9;

/**
 * Cross-entropy of a softmax over the whole catalogue, as one fused op: the
 * forward pass computes the logits once ([N, dim] · [dim, V]); the gradient
 * is softmax − one-hot, built by a scatter rather than an [N, V] one-hot, and
 * pushed back through two plain 2-D matMuls. Mean over the N positions.
 */
export function fullSoftmaxLoss(states: tf.Tensor2D, table: tf.Tensor2D, targets: tf.Tensor1D): tf.Scalar {
  const loss = tf.customGrad((...args: (tf.Tensor | tf.GradSaveFunc)[]) => {
    const [s, t, y, save] = args as [tf.Tensor2D, tf.Tensor2D, tf.Tensor1D, tf.GradSaveFunc];
    const n = s.shape[0];
    const v = t.shape[0];
    const logits = tf.add(tf.matMul(s, tf.transpose(t)), paddingMask(v)) as tf.Tensor2D; // [N, V]
    const lse = tf.logSumExp(logits, 1); // [N]
    const picked = tf.gatherND(logits, tf.stack([tf.range(0, n, 1, 'int32'), y], 1)); // [N]
    const probabilities = tf.exp(tf.sub(logits, tf.expandDims(lse, 1)));
    save([s, t, y, probabilities]);
    return {
      value: tf.mean(tf.sub(lse, picked)),
      gradFunc: (dy: tf.Tensor | tf.Tensor[], saved: tf.Tensor[]) => {
        const [ss, ts, ys, p] = saved as [tf.Tensor2D, tf.Tensor2D, tf.Tensor1D, tf.Tensor2D];
        const scale = tf.div(dy as tf.Scalar, n);
        const hits = tf.scatterND(tf.stack([tf.range(0, n, 1, 'int32'), ys], 1), tf.ones([n]), [n, v]);
        const dLogits = tf.mul(tf.sub(p, hits), scale) as tf.Tensor2D; // [N, V]
        return [tf.matMul(dLogits, ts), tf.matMul(tf.transpose(dLogits), ss), tf.zerosLike(ys)];
      },
    };
  });
  return loss(states, table, targets) as tf.Scalar;
}

function paddingMask(v: number): tf.Tensor1D {
  return tf.concat([tf.tensor1d([MASKED]), tf.zeros([v - 1])]) as tf.Tensor1D;
}

/**
 * Sampled softmax with negatives shared across the batch (Jean et al. 2015;
 * Yi et al., RecSys 2019): each position's target competes with the same S
 * sampled items. Logits are corrected by -log q(item), the sampling
 * probability, so popular-biased sampling still estimates the full softmax.
 * A negative that equals a row's target (an accidental hit) is masked out.
 */
export function sampledSoftmaxLoss(
  states: tf.Tensor2D,
  table: tf.Tensor2D,
  targets: tf.Tensor1D,
  negatives: tf.Tensor1D,
  logQTargets: tf.Tensor1D,
  logQNegatives: tf.Tensor1D,
): tf.Scalar {
  return tf.tidy(() => {
    const targetRows = embeddingLookup(table, targets); // [N, dim]
    const positive = tf.sub(tf.sum(tf.mul(states, targetRows), 1), logQTargets); // [N]
    const negativeRows = embeddingLookup(table, negatives); // [S, dim]
    const negativeLogits = tf.sub(dense(states, tf.transpose(negativeRows) as tf.Tensor2D), logQNegatives); // [N, S]
    const accidental = tf.equal(tf.expandDims(targets, 1), tf.expandDims(negatives, 0)); // [N, S]
    const masked = tf.where(accidental, tf.fill(negativeLogits.shape, MASKED), negativeLogits);
    const logits = tf.concat([tf.expandDims(positive, 1), masked], 1); // [N, 1 + S]
    return tf.mean(tf.sub(tf.logSumExp(logits, 1), positive)) as tf.Scalar;
  });
}

/**
 * Draws shared negatives from item popularity raised to `alpha` (0 = uniform,
 * 1 = unigram), by binary search over the cumulative distribution, and gives
 * each item's log sampling probability for the logQ correction.
 */
export class NegativeSampler {
  private readonly cumulative: Float64Array;
  readonly logQ: Float32Array;

  /** counts[i] = how often item i (1..V-1) occurs in training data; index 0 (padding) is never drawn. */
  constructor(counts: ArrayLike<number>, alpha: number) {
    const v = counts.length;
    const weights = new Float64Array(v);
    let total = 0;
    for (let i = 1; i < v; i++) {
      weights[i] = Math.pow(Math.max(counts[i]!, 0) + 1, alpha); // +1: unseen items stay drawable
      total += weights[i]!;
    }
    this.cumulative = new Float64Array(v);
    this.logQ = new Float32Array(v);
    let running = 0;
    for (let i = 1; i < v; i++) {
      running += weights[i]! / total;
      this.cumulative[i] = running;
      this.logQ[i] = Math.log(weights[i]! / total);
    }
  }

  sample(next: () => number, count: number): Int32Array {
    const out = new Int32Array(count);
    const last = this.cumulative.length - 1;
    for (let k = 0; k < count; k++) {
      const u = next() * this.cumulative[last]!;
      let lo = 1;
      let hi = last;
      while (lo < hi) {
        const mid = (lo + hi) >> 1;
        if (this.cumulative[mid]! < u) lo = mid + 1;
        else hi = mid;
      }
      out[k] = lo;
    }
    return out;
  }
}
