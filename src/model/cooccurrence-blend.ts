/**
 * The item-to-item part of a model version: for every item, its strongest
 * co-occurring items (cosine of the histories that hold both, training events
 * only; strongestNeighbours in item-cooccurrence.ts), and the blend that adds
 * them to the network's logits:
 *
 *   score(j) = logit(j) + weight · log(1 + scale · Σ_h decay^age(h) · cos(h, j))
 *
 * over the history's items h, age 0 for the newest. The attention network
 * compresses a history into one vector, which blurs the exact items a
 * shopper bought; this term keeps them. Weight, scale and decay are fitted on
 * the validation split when the version is trained (fitCooccurrenceBlend);
 * weight 0 leaves the network's scores alone. Scores stay logits, so the
 * probabilities are the softmax of the blended scores.
 */
export interface CooccurrenceBlendParams {
  readonly weight: number;
  readonly scale: number;
  readonly decay: number;
}

/** Each item's strongest neighbours, CSR over model item indices 0..numItems. */
export interface ItemNeighbours {
  readonly numItems: number;
  /** [numItems + 2]. */
  readonly offsets: Int32Array;
  readonly items: Int32Array;
  /** Cosine similarity of the pair. */
  readonly weights: Float32Array;
}

/** The blend's term for one history: the items it raises and by how much (every other item: 0). */
export interface CooccurrenceTerm {
  readonly items: Int32Array;
  readonly values: Float32Array;
}

export const EMPTY_TERM: CooccurrenceTerm = { items: new Int32Array(0), values: new Float32Array(0) };

export class CooccurrenceBlend {
  private readonly sums: Float64Array;
  private readonly touched: Int32Array;

  constructor(
    readonly neighbours: ItemNeighbours,
    readonly params: CooccurrenceBlendParams,
  ) {
    this.sums = new Float64Array(neighbours.numItems + 1);
    this.touched = new Int32Array(neighbours.numItems + 1);
  }

  /** Σ_h decay^age(h) · cos(h, j) for the items j next to the history's (model indices, oldest first). */
  similaritySums(history: ArrayLike<number>, decay = this.params.decay): CooccurrenceTerm {
    const { offsets, items, weights } = this.neighbours;
    let count = 0;
    let w = 1;
    for (let k = history.length - 1; k >= 0; k--, w *= decay) {
      const h = history[k]!;
      if (h <= 0 || h > this.neighbours.numItems) continue;
      for (let e = offsets[h]!; e < offsets[h + 1]!; e++) {
        const j = items[e]!;
        if (this.sums[j] === 0) this.touched[count++] = j;
        this.sums[j]! += w * weights[e]!;
      }
    }
    const out = { items: this.touched.slice(0, count), values: new Float32Array(count) };
    for (let i = 0; i < count; i++) {
      out.values[i] = this.sums[out.items[i]!]!;
      this.sums[out.items[i]!] = 0;
    }
    return out;
  }

  /** The term added to the logits for a history. */
  term(history: ArrayLike<number>): CooccurrenceTerm {
    if (this.params.weight === 0) return EMPTY_TERM;
    const sums = this.similaritySums(history);
    for (let i = 0; i < sums.values.length; i++) sums.values[i] = termValue(this.params.weight, this.params.scale, sums.values[i]!);
    return sums;
  }
}

/** The term's value for an item from its similarity sum: weight · log(1 + scale · sum), in float32 as stored. */
export function termValue(weight: number, scale: number, sum: number): number {
  return Math.fround(weight * Math.log1p(scale * sum));
}

/** Adds a term to a row of scores (index = model item index) in place. */
export function addTerm(scores: Float32Array, term: CooccurrenceTerm): void {
  for (let i = 0; i < term.items.length; i++) scores[term.items[i]!]! += term.values[i]!;
}
