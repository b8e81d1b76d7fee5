// The SASRec forward pass for serving, in AssemblyScript with 128-bit SIMD.
// Compiled by scripts/build-kernels.ts to generated/kernels/inference.wasm;
// driven by src/model/inference-engine.ts, which keeps the weights and the
// work buffers in this module's memory and calls these pieces in order.
//
// Matrices are float32, row-major, each with its own leading dimension (the
// number of floats between two rows), so a block of columns of a wider
// matrix (the K and V columns of a fused [d, 3d] projection) is an operand
// too. Histories are not padded: a batch is the rows of its histories one
// after another, each attended to within its own span.

import { exp4, horizontal } from './simd-math';

/**
 * C = A · B + bias, then by mode: 0 stores it, 1 adds it to C (a residual
 * connection), 2 stores max(0, ·) (ReLU). A is [m, k] (lda), B is [k, n]
 * (ldb), C is [m, n] (ldc), bias is [n] or 0.
 *
 * Four rows of A against eight columns of B at a time: per step of k, two
 * vector loads of B's row serve four broadcast values of A, eight products
 * accumulated in registers (eleven of the sixteen SIMD registers).
 */
export function gemm(m: i32, n: i32, k: i32, a: usize, lda: i32, b: usize, ldb: i32, c: usize, ldc: i32, bias: usize, mode: i32): void {
  const aRow = <usize>lda << 2;
  const bRow = <usize>ldb << 2;
  const cRow = <usize>ldc << 2;
  const n8 = n & ~7;
  let i = 0;
  for (; i + 4 <= m; i += 4) {
    const a0 = a + <usize>i * aRow;
    const a1 = a0 + aRow;
    const a2 = a1 + aRow;
    const a3 = a2 + aRow;
    const c0 = c + <usize>i * cRow;
    for (let j = 0; j < n8; j += 8) {
      const jb = <usize>j << 2;
      let s00 = f32x4.splat(0), s01 = f32x4.splat(0);
      let s10 = f32x4.splat(0), s11 = f32x4.splat(0);
      let s20 = f32x4.splat(0), s21 = f32x4.splat(0);
      let s30 = f32x4.splat(0), s31 = f32x4.splat(0);
      let bp = b + jb;
      for (let p = 0; p < k; p++, bp += bRow) {
        const b0 = v128.load(bp);
        const b1 = v128.load(bp, 16);
        const off = <usize>p << 2;
        const x0 = f32x4.splat(load<f32>(a0 + off));
        const x1 = f32x4.splat(load<f32>(a1 + off));
        const x2 = f32x4.splat(load<f32>(a2 + off));
        const x3 = f32x4.splat(load<f32>(a3 + off));
        s00 = f32x4.add(s00, f32x4.mul(x0, b0)); s01 = f32x4.add(s01, f32x4.mul(x0, b1));
        s10 = f32x4.add(s10, f32x4.mul(x1, b0)); s11 = f32x4.add(s11, f32x4.mul(x1, b1));
        s20 = f32x4.add(s20, f32x4.mul(x2, b0)); s21 = f32x4.add(s21, f32x4.mul(x2, b1));
        s30 = f32x4.add(s30, f32x4.mul(x3, b0)); s31 = f32x4.add(s31, f32x4.mul(x3, b1));
      }
      finish8(c0 + jb, s00, s01, bias, jb, mode);
      finish8(c0 + cRow + jb, s10, s11, bias, jb, mode);
      finish8(c0 + 2 * cRow + jb, s20, s21, bias, jb, mode);
      finish8(c0 + 3 * cRow + jb, s30, s31, bias, jb, mode);
    }
    for (let r = 0; r < 4; r++) gemmTail(a + <usize>(i + r) * aRow, n8, n, k, b, bRow, c + <usize>(i + r) * cRow, bias, mode);
  }
  for (; i < m; i++) {
    const ai = a + <usize>i * aRow;
    const ci = c + <usize>i * cRow;
    for (let j = 0; j < n8; j += 8) {
      const jb = <usize>j << 2;
      let s0 = f32x4.splat(0), s1 = f32x4.splat(0);
      let bp = b + jb;
      for (let p = 0; p < k; p++, bp += bRow) {
        const x = f32x4.splat(load<f32>(ai + (<usize>p << 2)));
        s0 = f32x4.add(s0, f32x4.mul(x, v128.load(bp)));
        s1 = f32x4.add(s1, f32x4.mul(x, v128.load(bp, 16)));
      }
      finish8(ci + jb, s0, s1, bias, jb, mode);
    }
    gemmTail(ai, n8, n, k, b, bRow, ci, bias, mode);
  }
}

@inline function finish8(at: usize, s0: v128, s1: v128, bias: usize, jb: usize, mode: i32): void {
  if (bias != 0) {
    s0 = f32x4.add(s0, v128.load(bias + jb));
    s1 = f32x4.add(s1, v128.load(bias + jb, 16));
  }
  if (mode == 1) {
    s0 = f32x4.add(s0, v128.load(at));
    s1 = f32x4.add(s1, v128.load(at, 16));
  } else if (mode == 2) {
    s0 = f32x4.max(s0, f32x4.splat(0));
    s1 = f32x4.max(s1, f32x4.splat(0));
  }
  v128.store(at, s0);
  v128.store(at, s1, 16);
}

/** Columns [from, n) of one row of C, one at a time (widths that are not multiples of 8). */
function gemmTail(ai: usize, from: i32, n: i32, k: i32, b: usize, bRow: usize, ci: usize, bias: usize, mode: i32): void {
  for (let j = from; j < n; j++) {
    const jb = <usize>j << 2;
    let s: f32 = 0;
    let bp = b + jb;
    for (let p = 0; p < k; p++, bp += bRow) s += load<f32>(ai + (<usize>p << 2)) * load<f32>(bp);
    if (bias != 0) s += load<f32>(bias + jb);
    const at = ci + jb;
    if (mode == 1) s += load<f32>(at);
    else if (mode == 2 && s < 0) s = 0;
    store<f32>(at, s);
  }
}

/**
 * Layer normalisation of m rows of width d: out = (x − mean) / √(var + eps) · γ + β,
 * the variance the mean squared deviation (two passes, as tf.moments).
 */
export function layerNorm(m: i32, d: i32, x: usize, ldx: i32, out: usize, ldo: i32, gamma: usize, beta: usize, eps: f32): void {
  const d4 = d & ~3;
  const inv: f32 = 1 / <f32>d;
  for (let i = 0; i < m; i++) {
    const xi = x + (<usize>i * <usize>ldx << 2);
    const oi = out + (<usize>i * <usize>ldo << 2);
    let acc = f32x4.splat(0);
    let j = 0;
    for (; j < d4; j += 4) acc = f32x4.add(acc, v128.load(xi + (<usize>j << 2)));
    let sum = horizontal(acc);
    for (; j < d; j++) sum += load<f32>(xi + (<usize>j << 2));
    const mean = sum * inv;
    const mv = f32x4.splat(mean);
    acc = f32x4.splat(0);
    for (j = 0; j < d4; j += 4) {
      const dv = f32x4.sub(v128.load(xi + (<usize>j << 2)), mv);
      acc = f32x4.add(acc, f32x4.mul(dv, dv));
    }
    let sq = horizontal(acc);
    for (; j < d; j++) {
      const dv = load<f32>(xi + (<usize>j << 2)) - mean;
      sq += dv * dv;
    }
    const r: f32 = 1 / Mathf.sqrt(sq * inv + eps);
    const rv = f32x4.splat(r);
    for (j = 0; j < d4; j += 4) {
      const o = <usize>j << 2;
      const y = f32x4.mul(f32x4.sub(v128.load(xi + o), mv), rv);
      v128.store(oi + o, f32x4.add(f32x4.mul(y, v128.load(gamma + o)), v128.load(beta + o)));
    }
    for (; j < d; j++) {
      const o = <usize>j << 2;
      store<f32>(oi + o, (load<f32>(xi + o) - mean) * r * load<f32>(gamma + o) + load<f32>(beta + o));
    }
  }
}

/**
 * Input rows: out[r] = itemTable[items[r]] · scale + positionTable[positions[r]]
 * (+ typeTable[types[r]] when typeTable != 0). items, positions, types: i32 [m].
 */
export function embed(m: i32, d: i32, items: usize, positions: usize, types: usize, itemTable: usize, positionTable: usize, typeTable: usize, scale: f32, out: usize): void {
  const row = <usize>d << 2;
  const d4 = d & ~3;
  const sv = f32x4.splat(scale);
  for (let r = 0; r < m; r++) {
    const o = out + <usize>r * row;
    const it = itemTable + <usize>load<i32>(items + (<usize>r << 2)) * row;
    const pt = positionTable + <usize>load<i32>(positions + (<usize>r << 2)) * row;
    const tt = typeTable == 0 ? 0 : typeTable + <usize>load<i32>(types + (<usize>r << 2)) * row;
    let j = 0;
    for (; j < d4; j += 4) {
      const off = <usize>j << 2;
      let v = f32x4.add(f32x4.mul(v128.load(it + off), sv), v128.load(pt + off));
      if (tt != 0) v = f32x4.add(v, v128.load(tt + off));
      v128.store(o + off, v);
    }
    for (; j < d; j++) {
      const off = <usize>j << 2;
      let v = load<f32>(it + off) * scale + load<f32>(pt + off);
      if (tt != 0) v += load<f32>(tt + off);
      store<f32>(o + off, v);
    }
  }
}

@inline function dot(a: usize, b: usize, n: i32): f32 {
  const n4 = n & ~3;
  let acc = f32x4.splat(0);
  let i = 0;
  for (; i < n4; i += 4) acc = f32x4.add(acc, f32x4.mul(v128.load(a + (<usize>i << 2)), v128.load(b + (<usize>i << 2))));
  let s = horizontal(acc);
  for (; i < n; i++) s += load<f32>(a + (<usize>i << 2)) * load<f32>(b + (<usize>i << 2));
  return s;
}

/**
 * Causal attention of one history of t keys, for query positions
 * [from, t): position p sees keys 0..p. q's row for position p is at
 * q + (p − from) · ldq; k and v rows at k + s · ldkv; the context row goes to
 * out + (p − from) · ldo. Each head h reads and writes columns
 * [h · dk, (h + 1) · dk). When weights != 0 the weights of row p, head h are
 * written to weights[h, p − from, 0..t) (zeros past p). scratch: t + 4 floats.
 */
export function attend(t: i32, from: i32, heads: i32, dk: i32, scale: f32, q: usize, ldq: i32, k: usize, v: usize, ldkv: i32, out: usize, ldo: i32, weights: usize, scratch: usize): void {
  const rows = t - from;
  const kvRow = <usize>ldkv << 2;
  const dk4 = dk & ~3;
  for (let h = 0; h < heads; h++) {
    const col = <usize>(h * dk) << 2;
    for (let p = from; p < t; p++) {
      const qRow = q + (<usize>(p - from) * <usize>ldq << 2) + col;
      const n = p + 1;
      // Scores, their maximum, then exp and sum four at a time.
      let max: f32 = -Infinity;
      for (let s = 0; s < n; s++) {
        const score = dot(qRow, k + <usize>s * kvRow + col, dk) * scale;
        store<f32>(scratch + (<usize>s << 2), score);
        if (score > max) max = score;
      }
      const n4 = n & ~3;
      const mv = f32x4.splat(max);
      let sv = f32x4.splat(0);
      let s = 0;
      for (; s < n4; s += 4) {
        const at = scratch + (<usize>s << 2);
        const e = exp4(f32x4.sub(v128.load(at), mv));
        v128.store(at, e);
        sv = f32x4.add(sv, e);
      }
      let sum = horizontal(sv);
      for (; s < n; s++) {
        const at = scratch + (<usize>s << 2);
        const e = Mathf.exp(load<f32>(at) - max);
        store<f32>(at, e);
        sum += e;
      }
      const inv: f32 = 1 / sum;
      // Context: Σ_s w_s v_s over the head's columns.
      const oRow = out + (<usize>(p - from) * <usize>ldo << 2) + col;
      let j = 0;
      for (; j < dk4; j += 4) {
        const off = <usize>j << 2;
        let acc = f32x4.splat(0);
        let vp = v + col + off;
        for (let s2 = 0; s2 < n; s2++, vp += kvRow) acc = f32x4.add(acc, f32x4.mul(f32x4.splat(load<f32>(scratch + (<usize>s2 << 2))), v128.load(vp)));
        v128.store(oRow + off, f32x4.mul(acc, f32x4.splat(inv)));
      }
      for (; j < dk; j++) {
        const off = <usize>j << 2;
        let acc: f32 = 0;
        for (let s2 = 0; s2 < n; s2++) acc += load<f32>(scratch + (<usize>s2 << 2)) * load<f32>(v + <usize>s2 * kvRow + col + off);
        store<f32>(oRow + off, acc * inv);
      }
      if (weights != 0) {
        const w = weights + ((<usize>h * <usize>rows + <usize>(p - from)) * <usize>t << 2);
        for (let s2 = 0; s2 < n; s2++) store<f32>(w + (<usize>s2 << 2), load<f32>(scratch + (<usize>s2 << 2)) * inv);
        for (let s2 = n; s2 < t; s2++) store<f32>(w + (<usize>s2 << 2), 0);
      }
    }
  }
}

/** Copies m rows of width d, from a row stride lds to ldo, multiplying by scale. */
export function copyRows(m: i32, d: i32, src: usize, lds: i32, out: usize, ldo: i32, scale: f32): void {
  for (let i = 0; i < m; i++) {
    const s = src + (<usize>i * <usize>lds << 2);
    const o = out + (<usize>i * <usize>ldo << 2);
    for (let j = 0; j < d; j++) store<f32>(o + (<usize>j << 2), load<f32>(s + (<usize>j << 2)) * scale);
  }
}
