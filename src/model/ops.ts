import * as tf from '@tensorflow/tfjs';
import type { Random } from '../random.js';

/**
 * Operations with hand-written gradients. The wasm backend has no
 * UnsortedSegmentSum kernel, so tf.gather cannot be differentiated there, and
 * its matMul is fast only for plain, non-transposed 2-D operands
 * (../shared/FINDINGS.md: ~30 GFLOP/s against ~2 for transposed or batched).
 * Every gradient here is built from those fast shapes.
 */

/**
 * Rows of `table` [V, D] at `indices` [N] → [N, D]; gradient scattered back
 * with scatterND. The rows are read with gatherND: wasm's GatherV2 computes
 * every element's source index (7 ms for 2,800 rows of 64), gatherND copies
 * whole rows (0.7 ms).
 */
export function embeddingLookup(table: tf.Tensor2D, indices: tf.Tensor1D): tf.Tensor2D {
  const lookup = tf.customGrad((...args: (tf.Tensor | tf.GradSaveFunc)[]) => {
    const [t, i, save] = args as [tf.Tensor2D, tf.Tensor1D, tf.GradSaveFunc];
    save([i]);
    return {
      value: tf.gatherND(t, tf.expandDims(i, 1)),
      gradFunc: (dy: tf.Tensor | tf.Tensor[], saved: tf.Tensor[]) => {
        const idx = saved[0]!;
        // scatterND sums the rows of repeated indices, which is the gradient of a gather.
        return [tf.scatterND(idx.expandDims(1), dy as tf.Tensor, t.shape), tf.zerosLike(idx)];
      },
    };
  });
  return lookup(table, indices) as tf.Tensor2D;
}

/** x [N, in] · w [in, out] + b [out]; gradients as plain 2-D matMuls of explicitly transposed operands. */
export function dense(x: tf.Tensor2D, w: tf.Tensor2D, b?: tf.Tensor1D): tf.Tensor2D {
  const affine = tf.customGrad((...args: (tf.Tensor | tf.GradSaveFunc)[]) => {
    const save = args[args.length - 1] as tf.GradSaveFunc;
    const [xi, wi, bi] = args.slice(0, -1) as [tf.Tensor2D, tf.Tensor2D, tf.Tensor1D | undefined];
    save([xi, wi]);
    const product = tf.matMul(xi, wi);
    return {
      value: bi ? tf.add(product, bi) : product,
      gradFunc: (dy: tf.Tensor | tf.Tensor[], saved: tf.Tensor[]) => {
        const g = dy as tf.Tensor2D;
        const [xs, ws] = saved as [tf.Tensor2D, tf.Tensor2D];
        const dx = tf.matMul(g, tf.transpose(ws)); // [N, out] · [out, in]
        const dw = tf.matMul(tf.transpose(xs), g); // [in, N] · [N, out]
        return bi ? [dx, dw, tf.sum(g, 0)] : [dx, dw];
      },
    };
  });
  return (b ? affine(x, w, b) : affine(x, w)) as tf.Tensor2D;
}

/**
 * Layer normalisation over the last axis, as one op: the forward pass keeps
 * only the normalised values and each row's inverse deviation, and the
 * gradient is written out (for the R rows of D features, with x̂ the
 * normalised input and g = dy · γ: dx = (g − mean(g) − x̂ · mean(g · x̂)) / σ).
 * Autodiff through the nine elementary ops kept every intermediate and its
 * gradient alive until the end of the training step.
 */
export function layerNorm(x: tf.Tensor, gamma: tf.Tensor1D, beta: tf.Tensor1D, epsilon = 1e-8): tf.Tensor {
  const shape = x.shape;
  const features = shape[shape.length - 1]!;
  const rows = x.size / features;
  const op = tf.customGrad((...args: (tf.Tensor | tf.GradSaveFunc)[]) => {
    const [xi, g, b, save] = args as [tf.Tensor, tf.Tensor1D, tf.Tensor1D, tf.GradSaveFunc];
    const [value, normalised, inverse] = tf.tidy(() => {
      const flat = tf.reshape(xi, [rows, features]);
      const { mean, variance } = tf.moments(flat, 1, true);
      const inverse = tf.rsqrt(tf.add(variance, epsilon)); // [R, 1]
      const normalised = tf.mul(tf.sub(flat, mean), inverse); // [R, D]
      return [tf.reshape(tf.add(tf.mul(normalised, g), b), shape), normalised, inverse];
    });
    save([normalised!, inverse!, g]);
    return {
      value: value!,
      gradFunc: (dy: tf.Tensor | tf.Tensor[], saved: tf.Tensor[]) =>
        tf.tidy(() => {
          const [xHat, inv, gs] = saved as [tf.Tensor2D, tf.Tensor2D, tf.Tensor1D];
          const dyFlat = tf.reshape(dy as tf.Tensor, [rows, features]);
          const dxHat = tf.mul(dyFlat, gs);
          const dx = tf.mul(tf.sub(tf.sub(dxHat, tf.mean(dxHat, 1, true)), tf.mul(xHat, tf.mean(tf.mul(dxHat, xHat), 1, true))), inv);
          return [tf.reshape(dx, shape), tf.sum(tf.mul(dyFlat, xHat), 0), tf.sum(dyFlat, 0)];
        }),
    };
  });
  return op(x, gamma, beta);
}

/**
 * Inverted dropout as one op: each element is kept with probability
 * 1 − rate and scaled by 1 / (1 − rate). The mask is drawn in JavaScript from
 * the seeded generator (the same mask on every backend) and is the only
 * tensor the gradient keeps; tf.dropout built it from five tensors of the
 * input's size, all alive until the end of the step.
 */
export function dropout(x: tf.Tensor, rate: number, random: Random): tf.Tensor {
  const keep = 1 - rate;
  const scale = 1 / keep;
  const values = new Float32Array(x.size);
  for (let i = 0; i < values.length; i++) values[i] = random.next() < keep ? scale : 0;
  const mask = tf.tensor(values, x.shape);
  const op = tf.customGrad((...args: (tf.Tensor | tf.GradSaveFunc)[]) => {
    const [xi, save] = args as [tf.Tensor, tf.GradSaveFunc];
    save([mask]); // saved, not just captured: autodiff frees the forward pass's other tensors before the gradient runs
    return { value: tf.mul(xi, mask), gradFunc: (dy: tf.Tensor | tf.Tensor[], saved: tf.Tensor[]) => [tf.mul(dy as tf.Tensor, saved[0]!)] };
  });
  return op(x);
}
