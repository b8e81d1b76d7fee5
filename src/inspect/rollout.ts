/**
 * Attention rollout (Abnar & Zuidema, ACL 2020): how much each input position
 * flows into a query position through all layers, counting the residual
 * path. Per layer the heads are averaged, the identity is added (the skip
 * connection carries the position's own value forward) and rows are
 * renormalised: Ã = (A + I) / 2 for attention rows that sum to 1. The
 * rollout is Ã_L · … · Ã_1; its row t says where position t's representation
 * came from.
 *
 * `layers[l]` is [heads, T, T] row-major (row = query). Returns row
 * `query` (default: the last position) of the rollout, length T, summing to 1.
 */
export function attentionRollout(layers: readonly Float32Array[], heads: number, T: number, query = T - 1): Float64Array {
  if (query < 0 || query >= T) throw new RangeError(`query position ${query} is outside 0..${T - 1}`);
  // Propagate one row vector backwards through the layers: r ← r · Ã_l, from the last layer to the first.
  let row = new Float64Array(T);
  row[query] = 1;
  for (let l = layers.length - 1; l >= 0; l--) {
    const mixed = headMean(layers[l]!, heads, T);
    const next = new Float64Array(T);
    for (let t = 0; t < T; t++) {
      const weight = row[t]!;
      if (weight === 0) continue;
      let sum = 0;
      for (let s = 0; s < T; s++) sum += mixed[t * T + s]!;
      // (A + I) normalised by its row sum; a row with no attention (padding) keeps only the identity.
      const norm = sum + 1;
      for (let s = 0; s < T; s++) next[s] = next[s]! + (weight * mixed[t * T + s]!) / norm;
      next[t] = next[t]! + weight / norm;
    }
    row = next;
  }
  return row;
}

/** Mean over heads of [heads, T, T] → [T, T]. */
export function headMean(layer: Float32Array, heads: number, T: number): Float64Array {
  if (layer.length !== heads * T * T) throw new RangeError(`attention layer has ${layer.length} values, expected ${heads} x ${T} x ${T}`);
  const out = new Float64Array(T * T);
  for (let h = 0; h < heads; h++) for (let i = 0; i < T * T; i++) out[i] = out[i]! + layer[h * T * T + i]! / heads;
  return out;
}
