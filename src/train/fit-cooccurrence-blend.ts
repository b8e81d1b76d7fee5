import type { LeaveOneOutSplit } from '../data/leave-one-out-split.js';
import { DEFAULT_EXCLUDE, excludedItems, type ExcludePolicy } from '../data/exclusion.js';
import { modelScorer } from '../evaluate/evaluate.js';
import { CooccurrenceBlend, termValue, type CooccurrenceBlendParams, type CooccurrenceTerm, type ItemNeighbours } from '../model/cooccurrence-blend.js';
import type { SasRecEnsemble } from '../model/ensemble.js';
import type { EncodedSequences } from '../data/encoded-sequences.js';

/**
 * Chooses the co-occurrence term's weight, scale and decay for a trained
 * network on the validation split: every combination of the grid, scored by
 * full-ranking NDCG@10 (every item but those the exclusion policy leaves out, as the protocol), the
 * network's logits computed once per user. Weight 0 (the network alone)
 * competes too and wins ties, so the term is only kept where it helps.
 */
export interface BlendGrid {
  readonly weights: readonly number[];
  readonly scales: readonly number[];
  readonly decays: readonly number[];
}

/**
 * Around what worked on amazon-games: weights up to 6 and scales 1–100 chose the edge (weight 6, scale 1);
 * this grid chose weight 4, scale 3, decay 0.7 there (docs/experiments.md).
 */
export const DEFAULT_BLEND_GRID: BlendGrid = { weights: [1, 2, 4, 6, 8, 12, 16], scales: [0.1, 0.3, 1, 3, 10], decays: [0.7, 0.9] };

export interface BlendFit {
  /** The best combination (weight 0: the network alone was best). */
  readonly params: CooccurrenceBlendParams;
  /** Validation NDCG@10 (full ranking) with it, and with the network alone. */
  readonly validNdcg10: number;
  readonly networkValidNdcg10: number;
  readonly users: number;
}

export function fitCooccurrenceBlend(model: SasRecEnsemble, neighbours: ItemNeighbours, data: EncodedSequences, split: LeaveOneOutSplit, sequences: Int32Array, grid: BlendGrid = DEFAULT_BLEND_GRID, exclude: ExcludePolicy = DEFAULT_EXCLUDE): BlendFit {
  const { maxLength, numItems } = model.config;
  const sums = new CooccurrenceBlend(neighbours, { weight: 0, scale: 0, decay: 0 });
  const combos: CooccurrenceBlendParams[] = [{ weight: 0, scale: 0, decay: 0 }];
  for (const decay of grid.decays) for (const scale of grid.scales) for (const weight of grid.weights) combos.push({ weight, scale, decay });
  const gains = new Float64Array(combos.length);
  const gain = (rank: number): number => (rank < 10 ? 1 / Math.log2(rank + 2) : 0);
  const inputLength = (s: number): number => split.validInput[s]!;
  const width = numItems + 1;
  // 0: an item to rank; 1: a history item the exclusion policy leaves out; 2: raised by the term (counted on its own).
  const mark = new Uint8Array(width);
  const plain = new Float32Array(width);
  forEachNetworkRow(model, data, sequences, inputLength, (s, raw) => {
    const begin = data.offsets[s]!;
    const end = begin + inputLength(s);
    const target = data.items[end]!;
    const window = data.items.subarray(Math.max(begin, end - maxLength), end);
    // The items the policy leaves out (as evaluateScorers); a target among them is a miss for every combination.
    const excluded = excludedItems(exclude, data.items.subarray(begin, end), data.types.subarray(begin, end));
    if (excluded.has(target)) return;
    for (const h of excluded) mark[h] = 1;
    // The term's items are the same whatever the decay (its values are not).
    const terms = grid.decays.map((decay) => sums.similaritySums(window, decay));
    for (const j of terms[0]?.items ?? []) if (mark[j] === 0) mark[j] = 2;
    // Every other item keeps its network score: sorted once, each combination's count is a binary search.
    let count = 0;
    for (let j = 1; j < width; j++) if (mark[j] === 0 && j !== target) plain[count++] = raw[j]!;
    const sorted = plain.subarray(0, count).sort();
    const atLeast = (threshold: number): number => count - lowerBound(sorted, threshold);
    // As evaluateModel adds it: float32 scores plus float32 terms.
    gains[0]! += gain(atLeast(raw[target]!) + countRaised(raw, terms[0], mark, target, raw[target]!, 0, 0));
    let combo = 1;
    grid.decays.forEach((_, d) => {
      const term = terms[d]!;
      let targetSum = 0;
      for (let i = 0; i < term.items.length; i++) if (term.items[i] === target) targetSum = term.values[i]!;
      for (const scale of grid.scales) {
        for (const weight of grid.weights) {
          const threshold = Math.fround(raw[target]! + termValue(weight, scale, targetSum));
          gains[combo++]! += gain(atLeast(threshold) + countRaised(raw, term, mark, target, threshold, weight, scale));
        }
      }
    });
    for (const j of terms[0]?.items ?? []) if (mark[j] === 2) mark[j] = 0;
    for (const h of excluded) mark[h] = 0;
  });
  let best = 0;
  for (let c = 1; c < combos.length; c++) if (gains[c]! > gains[best]!) best = c;
  const users = Math.max(1, sequences.length);
  return { params: combos[best]!, validNdcg10: gains[best]! / users, networkValidNdcg10: gains[0]! / users, users: sequences.length };
}

/**
 * The network's logits for each sequence's validation history (index = model item), in batches of
 * 256 ordered by history length, as the evaluation batches them.
 */
export function forEachNetworkRow(model: SasRecEnsemble, data: EncodedSequences, sequences: Int32Array, inputLength: (s: number) => number, visit: (s: number, raw: Float32Array) => void): void {
  const { maxLength, numItems } = model.config;
  const width = numItems + 1;
  const scorer = modelScorer(model, data);
  const order = Array.from(sequences).sort((a, b) => Math.min(maxLength, inputLength(a)) - Math.min(maxLength, inputLength(b)) || a - b);
  for (let start = 0; start < order.length; start += 256) {
    const batch = order.slice(start, start + 256);
    const scores = scorer(batch, inputLength);
    batch.forEach((s, row) => visit(s, scores.subarray(row * width, (row + 1) * width)));
  }
}

/** The term's items (those marked 2) scoring at least `threshold` with the term added. */
function countRaised(raw: Float32Array, term: CooccurrenceTerm | undefined, mark: Uint8Array, target: number, threshold: number, weight: number, scale: number): number {
  if (!term) return 0;
  let rank = 0;
  for (let i = 0; i < term.items.length; i++) {
    const j = term.items[i]!;
    if (mark[j] === 2 && j !== target && Math.fround(raw[j]! + termValue(weight, scale, term.values[i]!)) >= threshold) rank++;
  }
  return rank;
}

/** The first index of an ascending array whose value is at least `value`. */
export function lowerBound(sorted: Float32Array, value: number): number {
  let lo = 0;
  let hi = sorted.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (sorted[mid]! < value) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}
