import * as tf from '@tensorflow/tfjs';
import { embeddingLookup } from '../model/ops.js';
import { sampledSoftmaxKernel } from '../model/sampled-softmax-kernel.js';

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

/** The wasm backend's view of a tensor's memory (a public method of its backend class). */
interface WasmHeap {
  typedArrayFromHeap(tensor: tf.TensorInfo): Float32Array | Int32Array | Uint8Array;
}

/** One step's sample for sampledSoftmaxLoss: targets, shared negatives and their logQ biases. */
export interface SampledSoftmaxBatch {
  /** Targets per position (K ≥ 1): [N, K] row-major, item 0 in an empty slot. */
  readonly targets: Int32Array;
  /** K: targets per position. */
  readonly width: number;
  /** [N, K]: each target's weight in the loss (0 for an empty slot). */
  readonly weights: Float32Array;
  /** The S negatives every position is ranked against. */
  readonly negatives: Int32Array;
  /** -log q of each target [N, K]. */
  readonly targetBias: Float32Array;
  /** -log q of each negative [S]. */
  readonly negativeBias: Float32Array;
}

/**
 * A step's sample with the logQ biases of each target and negative looked up
 * in logQ. `targets` holds one target per position, or with `window` K per
 * position ([N, K] row-major, 0 = an empty slot) weighted by window.weights.
 */
export function sampledSoftmaxBatch(targets: ArrayLike<number>, negatives: ArrayLike<number>, logQ: ArrayLike<number>, window?: { readonly width: number; readonly weights: ArrayLike<number> }): SampledSoftmaxBatch {
  const width = window?.width ?? 1;
  if (!Number.isInteger(width) || width < 1 || targets.length % width !== 0) throw new RangeError(`sampled softmax: ${targets.length} targets do not make rows of ${width}`);
  const weights = window ? Float32Array.from(window.weights) : new Float32Array(targets.length).fill(1);
  if (weights.length !== targets.length) throw new RangeError(`sampled softmax: ${weights.length} weights for ${targets.length} targets`);
  return {
    targets: Int32Array.from(targets),
    width,
    weights,
    negatives: Int32Array.from(negatives),
    targetBias: Float32Array.from({ length: targets.length }, (_, i) => (targets[i]! > 0 ? -logQ[targets[i]!]! : 0)),
    negativeBias: Float32Array.from({ length: negatives.length }, (_, j) => -logQ[negatives[j]!]!),
  };
}

/**
 * Sampled softmax with negatives shared across the batch (Jean et al. 2015;
 * Yi et al., RecSys 2019): each position's target competes with the same S
 * sampled items. Logits carry additive biases: -log q(item), the sampling
 * probability (the logQ correction, so that popularity-biased sampling still
 * estimates the full softmax); a negative equal to the position's target (an
 * accidental hit) is left out of that position's softmax.
 *
 * With K targets per position (a target window: the next event and the ones
 * after it), each target has a softmax of its own against the same
 * negatives, and the loss is the weighted mean of their cross-entropies; a
 * negative equal to any of the position's targets is left out. The [N, S]
 * logits are computed once for all K, so a window costs about what one
 * target does.
 *
 * One fused op: the table rows of targets and negatives are gathered once
 * (one scatter in the gradient); the logits are one plain 2-D matMul; the
 * gradient (softmax − one-hot at the target column) goes back through plain
 * 2-D matMuls, scaled after them on [N, dim] and [S, dim] rather than on the
 * [N, S] probabilities. On the wasm backend the softmax itself runs
 * in the SIMD kernel (sampled-softmax-kernel.ts): TensorFlow.js's element-wise
 * ops took seven passes over the [N, S] logits. Mean over the targets' weights.
 */
export function sampledSoftmaxLoss(states: tf.Tensor2D, table: tf.Tensor2D, batch: SampledSoftmaxBatch, options: { readonly implementation?: 'auto' | 'kernel' | 'ops' } = {}): tf.Scalar {
  const k = batch.width;
  const n = batch.targets.length / k;
  const nk = batch.targets.length;
  const s = batch.negatives.length;
  const dim = states.shape[1];
  const kernel = sampledSoftmaxKernel();
  const wanted = options.implementation ?? 'auto';
  // Only on wasm: it reads tensors in place from the wasm heap (and the cpu backend would keep the kernel's views).
  const useKernel = kernel !== null && tf.getBackend() === 'wasm' && wanted !== 'ops';
  if (wanted === 'kernel' && !useKernel) throw new Error('the sampled softmax kernel runs on the wasm backend only, once built (`npm run build:kernels`)');
  let totalWeight = 0;
  for (const w of batch.weights) totalWeight += w;
  const targetBias = tf.tensor2d(batch.targetBias, [n, k]);
  const loss = tf.customGrad((...args: (tf.Tensor | tf.GradSaveFunc)[]) => {
    const [x, rows, save] = args as [tf.Tensor2D, tf.Tensor2D, tf.GradSaveFunc];
    const [value, pPositive, probabilities, transposed] = tf.tidy(() => {
      const positiveRows = tf.slice(rows, [0, 0], [nk, dim]);
      // [N, K]: each target's logit (one target: a row-wise dot product).
      const dots = k === 1 ? tf.sum(tf.mul(x, positiveRows), 1, true) : tf.sum(tf.mul(tf.expandDims(x, 1), tf.reshape(positiveRows, [n, k, dim])), 2);
      const positive = tf.add(dots, targetBias);
      const logits = tf.matMul(x, tf.transpose(tf.slice(rows, [nk, 0], [s, dim]))); // [N, S]
      if (useKernel) {
        // Read in place from the backend's heap, and uploaded from the kernel's memory: no JavaScript copies.
        const heap = tf.backend() as unknown as WasmHeap;
        const result = kernel!.forward(heap.typedArrayFromHeap(logits) as Float32Array, heap.typedArrayFromHeap(positive) as Float32Array, batch.weights, batch.negativeBias, batch.targets, batch.negatives);
        return [tf.scalar(result.lossSum / totalWeight), tf.tensor2d(result.pPositive, [n, k]), tf.tensor2d(result.probabilities, [n, s]), tf.tensor2d(result.transposed, [s, n])];
      }
      return softmaxWithOps(positive as tf.Tensor2D, logits as tf.Tensor2D, batch, totalWeight);
    });
    save([x, rows, pPositive!, probabilities!, transposed!]);
    return {
      value: value!,
      gradFunc: (dy: tf.Tensor | tf.Tensor[], saved: tf.Tensor[]) =>
        tf.tidy(() => {
          const [xs, rs, pp, pn, pnT] = saved as [tf.Tensor2D, tf.Tensor2D, tf.Tensor2D, tf.Tensor2D, tf.Tensor2D];
          const scale = tf.div(dy as tf.Scalar, totalWeight);
          const weights = tf.tensor2d(batch.weights, [n, k]); // made here: tensors of the forward pass that are not saved are gone by now
          const negativesPart = tf.mul(tf.matMul(pn, tf.slice(rs, [nk, 0], [s, dim])), scale);
          const dNegativeRows = tf.mul(tf.matMul(pnT, xs), scale); // [S, dim]
          if (k === 1) {
            const dPositive = tf.mul(tf.mul(tf.sub(pp, 1), weights), scale); // [N, 1]
            return [tf.add(tf.mul(dPositive, tf.slice(rs, [0, 0], [n, dim])), negativesPart), tf.concat([tf.mul(dPositive, xs), dNegativeRows], 0)];
          }
          const dPositive = tf.expandDims(tf.mul(tf.mul(tf.sub(pp, 1), weights), scale), 2); // [N, K, 1]
          const dx = tf.add(tf.sum(tf.mul(dPositive, tf.reshape(tf.slice(rs, [0, 0], [nk, dim]), [n, k, dim])), 1), negativesPart);
          const dPositiveRows = tf.reshape(tf.mul(dPositive, tf.expandDims(xs, 1)), [nk, dim]);
          return [dx, tf.concat([dPositiveRows, dNegativeRows], 0)];
        }),
    };
  });
  const rows = embeddingLookup(table, tf.tensor1d(Int32Array.from([...batch.targets, ...batch.negatives]), 'int32')); // one gather, one scatter
  return loss(states, rows) as tf.Scalar;
}

/**
 * The softmax step with TensorFlow.js ops (GPU backends, and the reference in
 * tests): returns the weighted mean loss, the targets' probabilities [N, K],
 * the gradient with respect to the negatives' logits [N, S] (see the kernel)
 * and that transposed [S, N].
 */
function softmaxWithOps(positive: tf.Tensor2D, logits: tf.Tensor2D, batch: SampledSoftmaxBatch, totalWeight: number): tf.Tensor[] {
  const [n, s] = logits.shape;
  const k = batch.width;
  const present = tf.greater(tf.tensor2d(batch.weights, [n, k]), 0); // [N, K]
  const sameItem = tf.equal(tf.tensor3d(batch.targets, [n, k, 1], 'int32'), tf.tensor3d(batch.negatives, [1, 1, s], 'int32')); // [N, K, S]
  const hits = tf.greater(tf.max(tf.cast(tf.logicalAnd(sameItem, tf.expandDims(present, 2)), 'float32'), 1), 0); // [N, S]
  const negativeLogits = tf.where(hits, tf.fill([n, s], MASKED), tf.add(logits, tf.tensor2d(batch.negativeBias, [1, s])));
  const positiveLogits = tf.where(present, positive, tf.fill([n, k], MASKED));
  // One softmax per target over [target | negatives], without concatenating them.
  const max = tf.maximum(tf.max(negativeLogits, 1, true), tf.max(positiveLogits, 1, true)); // [N, 1]
  const expNegative = tf.exp(tf.sub(negativeLogits, max)); // [N, S]
  const expPositive = tf.exp(tf.sub(positiveLogits, max)); // [N, K]
  const total = tf.add(tf.sum(expNegative, 1, true), expPositive); // [N, K]
  const weights = tf.tensor2d(batch.weights, [n, k]);
  const crossEntropy = tf.sub(tf.add(tf.log(total), max), tf.where(present, positive, tf.zerosLike(positive)));
  const coefficient = tf.sum(tf.div(weights, total), 1, true); // [N, 1]
  const gradient = tf.mul(expNegative, coefficient);
  return [tf.div(tf.sum(tf.mul(weights, crossEntropy)), totalWeight), tf.div(expPositive, total), gradient, tf.transpose(gradient)];
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
