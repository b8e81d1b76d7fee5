// The softmax part of the sampled softmax loss for the wasm backend, in
// AssemblyScript with 128-bit SIMD. Compiled by scripts/build-kernels.ts to
// generated/kernels/sampled-softmax.wasm; driven by
// src/model/sampled-softmax-kernel.ts.
//
// Row i is one position with k weighted targets (the next event, and with a
// target window the events after it): their logits positive[i, j] (logQ bias
// already added) and weights[i, j] (0: no target in that slot), and its
// logits against the S shared negatives, logits[i, j] (the matrix product,
// computed by TensorFlow.js). Each target competes with the negatives in a
// softmax of its own, Z_ij = exp(positive[i, j]) + Σ_s exp(logit[i, s]),
// sharing the negatives' terms. In one pass per row this adds each
// negative's bias, drops negatives equal to any of the row's targets
// (accidental hits), and writes in place the gradient of the row's weighted
// cross-entropy with respect to each negative's logit,
// exp(logit[i, s]) · Σ_j weights[i, j] / Z_ij (with one target of weight 1:
// the softmax probability); each target's own probability goes to
// pPositive[i, j]. TensorFlow.js needed seven [N, S] element-wise ops for the
// same (~7 ns an element each, against ~1 here).
//
// Layout: logits [n, s] float32 row-major; positive, weights, pPositive
// [n, k] float32; targets [n, k] int32; negBias [s] float32; negatives [s]
// int32; transposed [s, n] float32 (0: not wanted). Returns
// Σ_ij weights[i, j] (log Z_ij − positive[i, j]), the weighted summed
// cross-entropy, in float64.

import { exp4, horizontal, horizontalMax } from './simd-math';

export function forward(n: i32, s: i32, k: i32, logits: usize, positive: usize, weights: usize, negBias: usize, targets: usize, negatives: usize, pPositive: usize, transposed: usize): f64 {
  const vectorEnd = s & ~3;
  let loss: f64 = 0;
  for (let i = 0; i < n; i++) {
    const row = logits + <usize>i * <usize>s * 4;
    const slots = <usize>i * <usize>k * 4;
    // The row's largest target logit: the softmaxes' shift starts there.
    let max: f32 = -Infinity;
    for (let j = 0; j < k; j++) {
      if (load<f32>(weights + slots + (<usize>j << 2)) != 0) max = Mathf.max(max, load<f32>(positive + slots + (<usize>j << 2)));
    }
    // Bias, accidental hits (-Infinity), maximum.
    const masked = f32x4.splat(-Infinity);
    let vMax = f32x4.splat(max);
    let j = 0;
    for (; j < vectorEnd; j += 4) {
      const at = <usize>(j << 2);
      const candidates = v128.load(negatives + at);
      let hit = i32x4.splat(0);
      for (let t = 0; t < k; t++) {
        if (load<f32>(weights + slots + (<usize>t << 2)) != 0) hit = v128.or(hit, i32x4.eq(candidates, i32x4.splat(load<i32>(targets + slots + (<usize>t << 2)))));
      }
      const value = v128.bitselect(masked, f32x4.add(v128.load(row + at), v128.load(negBias + at)), hit);
      v128.store(row + at, value);
      vMax = f32x4.max(vMax, value);
    }
    max = horizontalMax(vMax);
    for (; j < s; j++) {
      const at = <usize>(j << 2);
      const candidate = load<i32>(negatives + at);
      let hit = false;
      for (let t = 0; t < k; t++) {
        if (load<f32>(weights + slots + (<usize>t << 2)) != 0 && load<i32>(targets + slots + (<usize>t << 2)) == candidate) hit = true;
      }
      const value: f32 = hit ? <f32>-Infinity : load<f32>(row + at) + load<f32>(negBias + at);
      store<f32>(row + at, value);
      max = Mathf.max(max, value);
    }
    // exp(logit − max) in place (exactly 0 for a hit, exp(-Infinity)), and the row's total.
    const vm = f32x4.splat(max);
    let vSum = f32x4.splat(0);
    for (j = 0; j < vectorEnd; j += 4) {
      const at = <usize>(j << 2);
      const value = v128.load(row + at);
      const e = v128.and(exp4(f32x4.sub(value, vm)), f32x4.ne(value, masked));
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
    // Each target's softmax shares the negatives' total.
    let coefficient: f32 = 0;
    for (let t = 0; t < k; t++) {
      const slot = slots + (<usize>t << 2);
      const weight = load<f32>(weights + slot);
      if (weight == 0) {
        store<f32>(pPositive + slot, 0);
        continue;
      }
      const pos = load<f32>(positive + slot);
      const ePositive = Mathf.exp(pos - max);
      const total = sum + ePositive;
      store<f32>(pPositive + slot, ePositive / total);
      coefficient += weight / total;
      loss += <f64>weight * (<f64>max + Math.log(<f64>total) - <f64>pos);
    }
    const scale = f32x4.splat(coefficient);
    for (j = 0; j < vectorEnd; j += 4) {
      const at = <usize>(j << 2);
      v128.store(row + at, f32x4.mul(v128.load(row + at), scale));
    }
    for (; j < s; j++) store<f32>(row + (<usize>j << 2), load<f32>(row + (<usize>j << 2)) * coefficient);
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
