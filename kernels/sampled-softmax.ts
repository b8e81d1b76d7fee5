// The softmax part of the sampled softmax loss for the wasm backend, in
// AssemblyScript with 128-bit SIMD. Compiled by scripts/build-kernels.ts to
// generated/kernels/sampled-softmax.wasm; driven by
// src/model/sampled-softmax-kernel.ts.
//
// Row i is one position: its target's logit positive[i] (logQ bias already
// added) and its logits against the S shared negatives, logits[i, j] (the
// matrix product, computed by TensorFlow.js). In one pass per row this adds
// each negative's bias, drops negatives equal to the row's target (accidental
// hits), and turns the row into softmax probabilities in place; the target's
// own probability goes to pPositive[i]. TensorFlow.js needed seven [N, S]
// element-wise ops for the same (~7 ns an element each, against ~1 here).
//
// Layout: logits [n, s] float32 row-major; positive, pPositive [n] float32;
// negBias [s] float32; targets [n], negatives [s] int32; transposed [s, n]
// float32 (0: not wanted). Returns Σ_i (log Z_i − positive[i]), the summed
// cross-entropy, in float64.

import { exp4, horizontal, horizontalMax } from './simd-math';

export function forward(n: i32, s: i32, logits: usize, positive: usize, negBias: usize, targets: usize, negatives: usize, pPositive: usize, transposed: usize): f64 {
  const vectorEnd = s & ~3;
  let loss: f64 = 0;
  for (let i = 0; i < n; i++) {
    const row = logits + <usize>i * <usize>s * 4;
    const target = load<i32>(targets + (<usize>i << 2));
    const pos = load<f32>(positive + (<usize>i << 2));
    const vTarget = i32x4.splat(target);
    const masked = f32x4.splat(-Infinity);
    // Bias, accidental hits, maximum.
    let vMax = f32x4.splat(pos);
    let j = 0;
    for (; j < vectorEnd; j += 4) {
      const at = <usize>(j << 2);
      const hit = i32x4.eq(v128.load(negatives + at), vTarget);
      const value = v128.bitselect(masked, f32x4.add(v128.load(row + at), v128.load(negBias + at)), hit);
      v128.store(row + at, value);
      vMax = f32x4.max(vMax, value);
    }
    let max = horizontalMax(vMax);
    for (; j < s; j++) {
      const at = <usize>(j << 2);
      const value: f32 = load<i32>(negatives + at) == target ? <f32>-Infinity : load<f32>(row + at) + load<f32>(negBias + at);
      store<f32>(row + at, value);
      max = Mathf.max(max, value);
    }
    // exp(logit − max) in place, and the row's total.
    const vm = f32x4.splat(max);
    let vSum = f32x4.splat(0);
    for (j = 0; j < vectorEnd; j += 4) {
      const at = <usize>(j << 2);
      const hit = i32x4.eq(v128.load(negatives + at), vTarget);
      const e = v128.andnot(exp4(f32x4.sub(v128.load(row + at), vm)), hit); // exactly 0 for a hit
      v128.store(row + at, e);
      vSum = f32x4.add(vSum, e);
    }
    let sum = horizontal(vSum);
    for (; j < s; j++) {
      const at = <usize>(j << 2);
      const value = load<f32>(row + at);
      const e: f32 = value == -Infinity ? 0 : Mathf.exp(value - max);
      store<f32>(row + at, e);
      sum += e;
    }
    const ePositive = Mathf.exp(pos - max);
    const total = sum + ePositive;
    const inverse = f32x4.splat(1 / total);
    for (j = 0; j < vectorEnd; j += 4) {
      const at = <usize>(j << 2);
      v128.store(row + at, f32x4.mul(v128.load(row + at), inverse));
    }
    for (; j < s; j++) store<f32>(row + (<usize>j << 2), load<f32>(row + (<usize>j << 2)) / total);
    store<f32>(pPositive + (<usize>i << 2), ePositive / total);
    loss += <f64>max + Math.log(<f64>total) - <f64>pos;
  }
  if (transposed != 0) transpose(logits, n, s, transposed);
  return loss;
}

/** dst [cols, rows] = src [rows, cols]ᵀ, in 16 × 16 tiles so both sides stay in cache. */
function transpose(src: usize, rows: i32, cols: i32, dst: usize): void {
  const TILE = 16;
  for (let r0 = 0; r0 < rows; r0 += TILE) {
    const r1 = min(r0 + TILE, rows);
    for (let c0 = 0; c0 < cols; c0 += TILE) {
      const c1 = min(c0 + TILE, cols);
      for (let r = r0; r < r1; r++) {
        const from = src + <usize>r * <usize>cols * 4;
        for (let c = c0; c < c1; c++) store<f32>(dst + (<usize>c * <usize>rows + <usize>r) * 4, load<f32>(from + (<usize>c << 2)));
      }
    }
  }
}
