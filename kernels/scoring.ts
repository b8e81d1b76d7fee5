// Scores of every catalogue item for one query vector, in AssemblyScript with
// 128-bit SIMD. Compiled by scripts/build-kernels.ts to
// generated/kernels/scoring.wasm; driven by src/model/scoring-kernel.ts.
//
// table is [rows, stride] float32, row-major, stride a multiple of 4 (rows
// padded with zeros); x is [stride]. out[r] = table[r] · x. The API calls
// this once per recommendation: 23,716 × 64 products take ~0.2 ms here
// against ~2.5 ms in a JavaScript loop.

export function matvec(table: usize, rows: i32, stride: i32, x: usize, out: usize): void {
  const rowBytes = <usize>(stride << 2);
  let r = 0;
  // Four rows per pass: x is loaded once for four dot products.
  for (; r + 4 <= rows; r += 4) {
    const a = table + <usize>r * rowBytes;
    const b = a + rowBytes;
    const c = b + rowBytes;
    const d = c + rowBytes;
    let sa = f32x4.splat(0);
    let sb = f32x4.splat(0);
    let sc = f32x4.splat(0);
    let sd = f32x4.splat(0);
    for (let i = 0; i < stride; i += 4) {
      const off = <usize>(i << 2);
      const xv = v128.load(x + off);
      sa = f32x4.add(sa, f32x4.mul(v128.load(a + off), xv));
      sb = f32x4.add(sb, f32x4.mul(v128.load(b + off), xv));
      sc = f32x4.add(sc, f32x4.mul(v128.load(c + off), xv));
      sd = f32x4.add(sd, f32x4.mul(v128.load(d + off), xv));
    }
    const o = out + (<usize>r << 2);
    store<f32>(o, horizontal(sa));
    store<f32>(o + 4, horizontal(sb));
    store<f32>(o + 8, horizontal(sc));
    store<f32>(o + 12, horizontal(sd));
  }
  for (; r < rows; r++) {
    const a = table + <usize>r * rowBytes;
    let s = f32x4.splat(0);
    for (let i = 0; i < stride; i += 4) {
      const off = <usize>(i << 2);
      s = f32x4.add(s, f32x4.mul(v128.load(a + off), v128.load(x + off)));
    }
    store<f32>(out + (<usize>r << 2), horizontal(s));
  }
}

@inline function horizontal(v: v128): f32 {
  return f32x4.extract_lane(v, 0) + f32x4.extract_lane(v, 1) + f32x4.extract_lane(v, 2) + f32x4.extract_lane(v, 3);
}
