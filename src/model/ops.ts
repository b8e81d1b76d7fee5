import * as tf from '@tensorflow/tfjs';

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

/** Layer normalisation over the last axis. */
export function layerNorm(x: tf.Tensor, gamma: tf.Tensor1D, beta: tf.Tensor1D, epsilon = 1e-8): tf.Tensor {
  const { mean, variance } = tf.moments(x, -1, true);
  return tf.add(tf.mul(tf.mul(tf.sub(x, mean), tf.rsqrt(tf.add(variance, epsilon))), gamma), beta);
}
