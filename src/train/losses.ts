import * as tf from '@tensorflow/tfjs';
import { embeddingLookup } from '../model/ops.js';

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
 * sampled items. Logits carry additive biases: -log q(item), the sampling
 * probability (the logQ correction, so that popularity-biased sampling still
 * estimates the full softmax), given per target [N] and per negative [S]
 * (sampledSoftmaxBiases); a negative equal to the row's target (an
 * accidental hit) is masked out, decided on the device from the two index
 * vectors rather than uploaded as an [N, S] array.
 *
 * One fused op: the table rows of targets and negatives are gathered once,
 * the forward pass keeps only the softmax, freeing each [N, S] intermediate
 * as soon as the next one exists (a 128 × 50 batch against 2,048 negatives
 * makes 40 MB tensors), and the gradient (softmax − one-hot at the target
 * column) goes back through plain 2-D matMuls. Mean over N.
 */
export function sampledSoftmaxLoss(states: tf.Tensor2D, table: tf.Tensor2D, targets: tf.Tensor1D, negatives: tf.Tensor1D, biases: SampledSoftmaxBiases): tf.Scalar {
  const n = states.shape[0];
  const dim = states.shape[1];
  const s = negatives.shape[0];
  // Constants of the op, not inputs: no gradient is built for them.
  const targetBias = tf.reshape(tf.tensor1d(biases.targetBias), [n, 1]);
  const negativeBias = tf.reshape(tf.tensor1d(biases.negativeBias), [1, s]);
  const hits = tf.equal(tf.reshape(targets, [n, 1]), tf.reshape(negatives, [1, s])); // [N, S] bool
  const loss = tf.customGrad((...args: (tf.Tensor | tf.GradSaveFunc)[]) => {
    const [x, rows, save] = args as [tf.Tensor2D, tf.Tensor2D, tf.GradSaveFunc];
    const { value, pPositive, pNegative } = tf.tidy(() => {
      const positive = tf.add(tf.sum(tf.mul(x, tf.slice(rows, [0, 0], [n, dim])), 1, true), targetBias); // [N, 1]
      const biased = step(tf.matMul(x, tf.transpose(tf.slice(rows, [n, 0], [s, dim]))), (t) => tf.add(t, negativeBias)); // [N, S]
      const negativeLogits = step(biased, (t) => step(tf.fill([n, s], MASKED), (masked) => tf.where(hits, masked, t)));
      // Softmax over [positive | negatives] without concatenating them: one exp pass over [N, S].
      const max = tf.maximum(tf.max(negativeLogits, 1, true), positive); // [N, 1]
      const expNegative = step(negativeLogits, (t) => tf.exp(tf.sub(t, max)));
      const expPositive = tf.exp(tf.sub(positive, max));
      const total = tf.add(tf.sum(expNegative, 1, true), expPositive); // [N, 1]
      const lse = tf.add(tf.log(total), max);
      return { value: tf.mean(tf.sub(lse, positive)), pPositive: tf.div(expPositive, total), pNegative: step(expNegative, (t) => tf.div(t, total)) };
    });
    save([x, rows, pPositive, pNegative]);
    return {
      value,
      gradFunc: (dy: tf.Tensor | tf.Tensor[], saved: tf.Tensor[]) => {
        const [xs, rs, pp, pn] = saved as [tf.Tensor2D, tf.Tensor2D, tf.Tensor2D, tf.Tensor2D];
        return tf.tidy(() => {
          const scale = tf.div(dy as tf.Scalar, n);
          const dPositive = tf.mul(tf.sub(pp, 1), scale); // [N, 1]
          const dNegative = tf.mul(pn, scale) as tf.Tensor2D; // [N, S]
          const dx = tf.add(tf.mul(dPositive, tf.slice(rs, [0, 0], [n, dim])), tf.matMul(dNegative, tf.slice(rs, [n, 0], [s, dim])));
          // dNegativeRows = dNegativeᵀ · x with an explicit transpose: (xᵀ · dNegative)ᵀ transposes less but
          // measured slower (XNNPACK with 64 output rows and an N-long inner dimension).
          const dNegativeRows = step(tf.transpose(dNegative), (t) => tf.matMul(t, xs));
          return [dx, tf.concat([tf.mul(dPositive, xs), dNegativeRows], 0)];
        });
      },
    };
  });
  const rows = embeddingLookup(table, tf.concat([targets, negatives]) as tf.Tensor1D); // one gather, one scatter
  return loss(states, rows) as tf.Scalar;
}

/** f(t), then t is freed: keeps one [N, S] tensor alive at a time inside the fused loss. */
function step<T extends tf.Tensor>(t: tf.Tensor, f: (t: tf.Tensor) => T): T {
  const out = f(t);
  t.dispose();
  return out;
}

export interface SampledSoftmaxBiases {
  /** -log q of each row's target [N]. */
  readonly targetBias: Float32Array;
  /** -log q of each negative [S]. */
  readonly negativeBias: Float32Array;
}

/** The logQ biases of sampledSoftmaxLoss: -log q of each target and of each negative. */
export function sampledSoftmaxBiases(targets: ArrayLike<number>, negatives: ArrayLike<number>, logQ: ArrayLike<number>): SampledSoftmaxBiases {
  const targetBias = Float32Array.from({ length: targets.length }, (_, i) => -logQ[targets[i]!]!);
  const negativeBias = Float32Array.from({ length: negatives.length }, (_, j) => -logQ[negatives[j]!]!);
  return { targetBias, negativeBias };
}

/**
 * Draws negatives in proportion to item popularity raised to `alpha`
 * (0 = uniform, 1 = unigram), by binary search over the cumulative
 * distribution, and gives each item's log sampling probability for the logQ
 * correction.
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

/**
 * Binary cross-entropy with one sampled negative per position, the loss of
 * the original SASRec: -log σ(s⁺) - log(1 - σ(s⁻)) = softplus(-s⁺) + softplus(s⁻),
 * averaged over the N positions. `negatives` [N] holds one item per position.
 */
export function bceLoss(states: tf.Tensor2D, table: tf.Tensor2D, targets: tf.Tensor1D, negatives: tf.Tensor1D): tf.Scalar {
  return tf.tidy(() => {
    const positive = tf.sum(tf.mul(states, embeddingLookup(table, targets)), 1); // [N]
    const negative = tf.sum(tf.mul(states, embeddingLookup(table, negatives)), 1); // [N]
    return tf.mean(tf.add(tf.softplus(tf.neg(positive)), tf.softplus(negative))) as tf.Scalar;
  });
}

/**
 * The calibration exponent β of gBCE (gSASRec, Petrov & Macdonald, RecSys 2023):
 * with S negatives drawn uniformly from the `items` - 1 items other than the
 * target, the sampling rate is α = S / (items - 1), and β = α (t (1 - 1/α) + 1/α):
 * t = 0 gives β = 1 (plain BCE), t = 1 gives β = α (fully calibrated).
 */
export function gbceBeta(negatives: number, items: number, t: number): number {
  const alpha = negatives / Math.max(1, items - 1);
  return alpha * (t * (1 - 1 / alpha) + 1 / alpha);
}

/**
 * gBCE (gSASRec): BCE whose positive term is raised to the power β,
 * -log σ(s⁺)^β - Σ log(1 - σ(s⁻)) = β softplus(-s⁺) + Σ softplus(s⁻), which
 * counteracts the overconfidence that negative sampling teaches a BCE model.
 * As in the paper, each position has its own k uniform negatives
 * (`negatives` [N × k], row-major, none equal to the row's target): shared
 * negatives were measured to collapse on amazon-games (every position pushes
 * the same k items down; validation NDCG@10 stayed at chance). Mean over N.
 */
export function gbceLoss(states: tf.Tensor2D, table: tf.Tensor2D, targets: tf.Tensor1D, negatives: tf.Tensor1D, beta: number): tf.Scalar {
  return tf.tidy(() => {
    const [n, dim] = states.shape;
    const k = negatives.shape[0] / n;
    const positive = tf.sum(tf.mul(states, embeddingLookup(table, targets)), 1); // [N]
    const negativeRows = tf.reshape(embeddingLookup(table, negatives), [n, k, dim]);
    const negativeLogits = tf.sum(tf.mul(tf.expandDims(states, 1), negativeRows), 2); // [N, k]
    return tf.mean(tf.add(tf.mul(tf.softplus(tf.neg(positive)), beta), tf.sum(tf.softplus(negativeLogits), 1))) as tf.Scalar;
  });
}
