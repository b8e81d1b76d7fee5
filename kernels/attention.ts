// Causal multi-head attention for the wasm backend, in AssemblyScript with
// 128-bit SIMD. Compiled by scripts/build-kernels.ts to
// generated/kernels/attention.wasm; driven by src/model/attention-kernel.ts.
//
// Layout: q, k, v, out, dOut, dQ, dK, dV are [pairs, T, D] float32, row-major,
// pairs = batch × heads (pair p belongs to batch row p / heads). keep is
// [batch, T] float32: 1 for a real event, 0 for padding. Query t of pair p
// sees key s iff s <= t and keep[b, s] = 1; a query that sees nothing
// outputs zeros. D must be a multiple of 4. Only visible (s <= t) products
// are computed: half the work of a dense T × T product.
//
// The backward pass recomputes each row's softmax from q and k instead of
// reading stored weights: one extra dot product per visible pair, and no
// [pairs, T, T] tensor to carry between the passes.

@inline function dot(a: usize, b: usize, d: i32): f32 {
  let acc = f32x4.splat(0);
  for (let i = 0; i < d; i += 4) {
    const off = <usize>(i << 2);
    acc = f32x4.add(acc, f32x4.mul(v128.load(a + off), v128.load(b + off)));
  }
  return f32x4.extract_lane(acc, 0) + f32x4.extract_lane(acc, 1) + f32x4.extract_lane(acc, 2) + f32x4.extract_lane(acc, 3);
}

/** y += alpha · x over d floats. */
@inline function axpy(alpha: f32, x: usize, y: usize, d: i32): void {
  const a = f32x4.splat(alpha);
  for (let i = 0; i < d; i += 4) {
    const off = <usize>(i << 2);
    v128.store(y + off, f32x4.add(v128.load(y + off), f32x4.mul(a, v128.load(x + off))));
  }
}

/**
 * Softmax of query row t over its visible keys, into probs[s] for s in
 * [0, t] (0 where not visible). Returns the number of visible keys.
 */
@inline function rowSoftmax(qRow: usize, kBase: usize, keepRow: usize, t: i32, d: i32, scale: f32, probs: usize): i32 {
  let max: f32 = -Infinity;
  let visible = 0;
  const rowBytes = <usize>(d << 2);
  for (let s = 0; s <= t; s++) {
    const at = probs + (<usize>s << 2);
    if (load<f32>(keepRow + (<usize>s << 2)) == 0) {
      store<f32>(at, -Infinity);
      continue;
    }
    const score = dot(qRow, kBase + <usize>s * rowBytes, d) * scale;
    store<f32>(at, score);
    if (score > max) max = score;
    visible++;
  }
  if (visible == 0) {
    memory.fill(probs, 0, <usize>(t + 1) << 2);
    return 0;
  }
  let sum: f32 = 0;
  for (let s = 0; s <= t; s++) {
    const at = probs + (<usize>s << 2);
    const e = Mathf.exp(load<f32>(at) - max); // exp(-inf) = 0 for hidden keys
    store<f32>(at, e);
    sum += e;
  }
  const inv: f32 = 1 / sum;
  for (let s = 0; s <= t; s++) {
    const at = probs + (<usize>s << 2);
    store<f32>(at, load<f32>(at) * inv);
  }
  return visible;
}

/**
 * out = softmax(q kᵀ · scale + mask) v. When weights != 0 the attention
 * weights [pairs, T, T] are written there too (zeros where not visible).
 * scratch: T floats.
 */
export function forward(pairs: i32, heads: i32, T: i32, d: i32, scale: f32, q: usize, k: usize, v: usize, keep: usize, out: usize, weights: usize, scratch: usize): void {
  const rowBytes = <usize>(d << 2);
  const pairBytes = <usize>T * rowBytes;
  memory.fill(out, 0, <usize>pairs * pairBytes);
  if (weights != 0) memory.fill(weights, 0, <usize>pairs * <usize>T * <usize>T * 4);
  for (let p = 0; p < pairs; p++) {
    const base = <usize>p * pairBytes;
    const keepRow = keep + <usize>((p / heads) * T) * 4;
    for (let t = 0; t < T; t++) {
      const qRow = q + base + <usize>t * rowBytes;
      if (rowSoftmax(qRow, k + base, keepRow, t, d, scale, scratch) == 0) continue;
      const outRow = out + base + <usize>t * rowBytes;
      for (let s = 0; s <= t; s++) {
        const a = load<f32>(scratch + (<usize>s << 2));
        if (a == 0) continue;
        axpy(a, v + base + <usize>s * rowBytes, outRow, d);
      }
      if (weights != 0) memory.copy(weights + (<usize>p * <usize>T + <usize>t) * <usize>T * 4, scratch, <usize>(t + 1) << 2);
    }
  }
}

/**
 * Gradients of forward's out with respect to q, k and v, given dOut.
 * dS = A ⊙ (dA − Σ_s dA ⊙ A) · scale with dA = dOut vᵀ; dQ = dS k,
 * dK = dSᵀ q, dV = Aᵀ dOut. scratch: 2 T floats.
 */
export function backward(pairs: i32, heads: i32, T: i32, d: i32, scale: f32, q: usize, k: usize, v: usize, keep: usize, dOut: usize, dQ: usize, dK: usize, dV: usize, scratch: usize): void {
  const rowBytes = <usize>(d << 2);
  const pairBytes = <usize>T * rowBytes;
  const total = <usize>pairs * pairBytes;
  memory.fill(dQ, 0, total);
  memory.fill(dK, 0, total);
  memory.fill(dV, 0, total);
  const probs = scratch;
  const dA = scratch + (<usize>T << 2);
  for (let p = 0; p < pairs; p++) {
    const base = <usize>p * pairBytes;
    const keepRow = keep + <usize>((p / heads) * T) * 4;
    for (let t = 0; t < T; t++) {
      const qRow = q + base + <usize>t * rowBytes;
      if (rowSoftmax(qRow, k + base, keepRow, t, d, scale, probs) == 0) continue;
      const gRow = dOut + base + <usize>t * rowBytes;
      let c: f32 = 0;
      for (let s = 0; s <= t; s++) {
        const a = load<f32>(probs + (<usize>s << 2));
        if (a == 0) continue;
        const g = dot(gRow, v + base + <usize>s * rowBytes, d);
        store<f32>(dA + (<usize>s << 2), g);
        c += g * a;
      }
      const dqRow = dQ + base + <usize>t * rowBytes;
      for (let s = 0; s <= t; s++) {
        const a = load<f32>(probs + (<usize>s << 2));
        if (a == 0) continue;
        const ds = a * (load<f32>(dA + (<usize>s << 2)) - c) * scale;
        const sOff = base + <usize>s * rowBytes;
        axpy(ds, k + sOff, dqRow, d);
        axpy(ds, qRow, dK + sOff, d);
        axpy(a, gRow, dV + sOff, d);
      }
    }
  }
}
