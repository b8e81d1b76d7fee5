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
 *
 * The repeat part raises the history's own items, for shops whose shoppers
 * buy the same things again (consumables):
 *
 *   + repeatWeight · log(1 + Σ_{h = j} repeatDecay^age(h))
 *
 * log(1 + count) with decay 1 (the "buy it again" list's frequency), the
 * latest occurrences weighing most with a smaller decay. It is fitted on
 * validation after the co-occurrence part (fitRepeatTerm), under the version's
 * exclusion policy: where the policy leaves every history item out (the API's
 * default on a purchase log) it cannot change a ranking and stays 0.
 */
export interface CooccurrenceBlendParams {
  readonly weight: number;
  readonly scale: number;
  readonly decay: number;
  /** The repeat part (absent in versions trained before it: 0). */
  readonly repeatWeight?: number;
  readonly repeatDecay?: number;
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
  private readonly repeats: RepeatSums;

  constructor(
    readonly neighbours: ItemNeighbours,
    readonly params: CooccurrenceBlendParams,
  ) {
    this.sums = new Float64Array(neighbours.numItems + 1);
    this.touched = new Int32Array(neighbours.numItems + 1);
    this.repeats = new RepeatSums(neighbours.numItems);
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
    const cooccurrence = this.cooccurrenceTerm(history);
    const { repeatWeight = 0, repeatDecay = 1 } = this.params;
    return repeatWeight === 0 ? cooccurrence : this.repeats.add(cooccurrence, history, repeatWeight, repeatDecay);
  }

  /** The co-occurrence part of the term alone. */
  cooccurrenceTerm(history: ArrayLike<number>): CooccurrenceTerm {
    if (this.params.weight === 0) return EMPTY_TERM;
    const sums = this.similaritySums(history);
    for (let i = 0; i < sums.values.length; i++) sums.values[i] = termValue(this.params.weight, this.params.scale, sums.values[i]!);
    return sums;
  }
}

/** Adds the repeat part to a co-occurrence term (see CooccurrenceBlendParams). */
export class RepeatSums {
  private readonly sums: Float64Array;
  /** Where each item sits in the term being built, + 1 (0: not in it). */
  private readonly slot: Int32Array;

  constructor(numItems: number) {
    this.sums = new Float64Array(numItems + 1);
    this.slot = new Int32Array(numItems + 1);
  }

  /** The history's distinct items (model indices, padding and unknown ones left out) with Σ decay^age of each. */
  occurrences(history: ArrayLike<number>, decay: number): CooccurrenceTerm {
    const items: number[] = [];
    let w = 1;
    for (let k = history.length - 1; k >= 0; k--, w *= decay) {
      const h = history[k]!;
      if (h <= 0 || h >= this.sums.length) continue;
      if (this.sums[h] === 0) items.push(h);
      this.sums[h]! += w;
    }
    const out = { items: Int32Array.from(items), values: new Float32Array(items.length) };
    for (let i = 0; i < items.length; i++) {
      out.values[i] = this.sums[items[i]!]!;
      this.sums[items[i]!] = 0;
    }
    return out;
  }

  /** `term` with repeatValue(weight, Σ decay^age) added to each history item's value (a new term; `term` is left alone). */
  add(term: CooccurrenceTerm, history: ArrayLike<number>, weight: number, decay: number): CooccurrenceTerm {
    return mergeRepeats(term, this.occurrences(history, decay), weight, this.slot);
  }
}

/**
 * The term plus the repeat values of `occurrences` (from RepeatSums.occurrences):
 * items of both keep the term's order, the history's others follow. `slot` is
 * scratch of numItems + 1 zeros, left zero.
 */
export function mergeRepeats(term: CooccurrenceTerm, occurrences: CooccurrenceTerm, weight: number, slot: Int32Array): CooccurrenceTerm {
  const n = term.items.length;
  for (let i = 0; i < n; i++) slot[term.items[i]!] = i + 1;
  let extra = 0;
  for (let i = 0; i < occurrences.items.length; i++) if (slot[occurrences.items[i]!] === 0) extra++;
  const items = new Int32Array(n + extra);
  const values = new Float32Array(n + extra);
  items.set(term.items);
  values.set(term.values);
  let next = n;
  for (let i = 0; i < occurrences.items.length; i++) {
    const j = occurrences.items[i]!;
    const at = slot[j]! > 0 ? slot[j]! - 1 : next++;
    items[at] = j;
    values[at] = values[at]! + repeatValue(weight, occurrences.values[i]!);
  }
  for (let i = 0; i < n; i++) slot[term.items[i]!] = 0;
  return { items, values };
}

/** The repeat part's value for an item from its Σ decay^age: weight · log(1 + sum), in float32. */
export function repeatValue(weight: number, sum: number): number {
  return Math.fround(weight * Math.log1p(sum));
}

/** The term's value for an item from its similarity sum: weight · log(1 + scale · sum), in float32 as stored. */
export function termValue(weight: number, scale: number, sum: number): number {
  return Math.fround(weight * Math.log1p(scale * sum));
}

/** Adds a term to a row of scores (index = model item index) in place. */
export function addTerm(scores: Float32Array, term: CooccurrenceTerm): void {
  for (let i = 0; i < term.items.length; i++) scores[term.items[i]!]! += term.values[i]!;
}
