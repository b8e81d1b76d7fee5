import type { LeaveOneOutSplit } from '../data/leave-one-out-split.js';
import { DEFAULT_EXCLUDE, excludedItems, type ExcludePolicy } from '../data/exclusion.js';
import type { EncodedSequences } from '../data/encoded-sequences.js';
import { CooccurrenceBlend, RepeatSums, repeatValue, type CooccurrenceBlendParams, type ItemNeighbours } from '../model/cooccurrence-blend.js';
import type { SasRecEnsemble } from '../model/ensemble.js';
import { forEachNetworkRow, lowerBound } from './fit-cooccurrence-blend.js';

/**
 * Chooses the repeat part of the history term (cooccurrence-blend.ts) for a
 * trained network and its fitted co-occurrence part, on the validation split:
 * every weight × decay of the grid, scored by full-ranking NDCG@10 under the
 * version's exclusion policy exactly as evaluateModel scores the blended
 * version. Weight 0 competes and wins ties, so the part is only kept where it
 * helps. Where the policy leaves every history item of every validation user
 * out (the API's default, `purchased`, on a log of purchases), the part cannot
 * move a ranking and nothing is fitted (undefined).
 */
export interface RepeatGrid {
  readonly weights: readonly number[];
  readonly decays: readonly number[];
}

/** Weights on the scale of the network's logits (their spread over a catalogue is ~10); decay 1 is plain frequency. */
export const DEFAULT_REPEAT_GRID: RepeatGrid = { weights: [0.25, 0.5, 1, 2, 4, 8, 16, 32, 64], decays: [0.5, 0.8, 0.9, 0.95, 1] };

export interface RepeatFit {
  /** The best weight and decay (weight 0: the history's own items gain nothing). */
  readonly repeatWeight: number;
  readonly repeatDecay: number;
  /** Validation NDCG@10 (full ranking) with it, and without the repeat part. */
  readonly validNdcg10: number;
  readonly withoutValidNdcg10: number;
  /** Validation users, and those whose held-out item repeats a history item the policy lets through. */
  readonly users: number;
  readonly repeatTargets: number;
}

export function fitRepeatTerm(
  model: SasRecEnsemble,
  neighbours: ItemNeighbours,
  cooccurrence: CooccurrenceBlendParams,
  data: EncodedSequences,
  split: LeaveOneOutSplit,
  sequences: Int32Array,
  exclude: ExcludePolicy = DEFAULT_EXCLUDE,
  grid: RepeatGrid = DEFAULT_REPEAT_GRID,
): RepeatFit | undefined {
  const { maxLength, numItems } = model.config;
  const width = numItems + 1;
  const inputLength = (s: number): number => split.validInput[s]!;
  const window = (s: number): Int32Array => {
    const end = data.offsets[s]! + inputLength(s);
    return data.items.subarray(Math.max(data.offsets[s]!, end - maxLength), end);
  };
  const excludedOf = (s: number): ReadonlySet<number> => {
    const begin = data.offsets[s]!;
    const end = begin + inputLength(s);
    return excludedItems(exclude, data.items.subarray(begin, end), data.types.subarray(begin, end));
  };
  const repeats = new RepeatSums(numItems);
  // Users whose window holds an item the policy lets through: only they can move; without any, nothing to fit.
  const open = (s: number): boolean => {
    const excluded = excludedOf(s);
    return window(s).some((h) => h > 0 && !excluded.has(h));
  };
  if (!Array.from(sequences).some(open)) return undefined;

  const blend = new CooccurrenceBlend(neighbours, { ...cooccurrence, repeatWeight: 0 });
  // Each combination names its decay's index in grid.decays (weight 0 adds nothing, whichever it reads).
  const combos: { weight: number; decay: number; d: number }[] = [{ weight: 0, decay: 1, d: 0 }];
  grid.decays.forEach((decay, d) => {
    for (const weight of grid.weights) combos.push({ weight, decay, d });
  });
  const gains = new Float64Array(combos.length);
  const gain = (rank: number): number => (rank < 10 ? 1 / Math.log2(rank + 2) : 0);
  const coocValue = new Float32Array(width);
  const inHistory = new Uint8Array(width);
  const rest = new Float32Array(width);
  let repeatTargets = 0;
  forEachNetworkRow(model, data, sequences, inputLength, (s, raw) => {
    const target = data.items[data.offsets[s]! + inputLength(s)]!;
    const excluded = excludedOf(s);
    if (excluded.has(target)) return; // a miss whatever the combination
    const history = window(s);
    const term = blend.cooccurrenceTerm(history);
    for (let i = 0; i < term.items.length; i++) coocValue[term.items[i]!] = term.values[i]!;
    // The history's items the policy lets through get the repeat part; every other item keeps one score.
    // Each decay's sums list the same items in the same order (the history's, newest first): a position names an item in all.
    const byDecay = grid.decays.map((decay) => repeats.occurrences(history, decay));
    const items = byDecay[0]!.items;
    const candidates: number[] = [];
    for (let i = 0; i < items.length; i++) if (!excluded.has(items[i]!)) candidates.push(i);
    for (const i of candidates) inHistory[items[i]!] = 1;
    const targetAt = inHistory[target] === 1 ? items.indexOf(target) : -1;
    if (targetAt >= 0) repeatTargets++;
    let count = 0;
    for (let j = 1; j < width; j++) if (inHistory[j] === 0 && j !== target && !excluded.has(j)) rest[count++] = Math.fround(raw[j]! + coocValue[j]!);
    const sorted = rest.subarray(0, count).sort();
    // As evaluateModel scores: float32 logits plus the float32 term, whose value for a history item is cooc + repeat in float32.
    const served = (j: number, value: number): number => Math.fround(raw[j]! + Math.fround(coocValue[j]! + value));
    combos.forEach(({ weight, d }, c) => {
      const sums = byDecay[d]!.values;
      const repeatAt = (i: number): number => (weight === 0 ? 0 : repeatValue(weight, sums[i]!));
      const threshold = targetAt >= 0 ? served(target, repeatAt(targetAt)) : Math.fround(raw[target]! + coocValue[target]!);
      let rank = count - lowerBound(sorted, threshold);
      for (const i of candidates) if (i !== targetAt && served(items[i]!, repeatAt(i)) >= threshold) rank++;
      gains[c]! += gain(rank);
    });
    for (const i of candidates) inHistory[items[i]!] = 0;
    for (let i = 0; i < term.items.length; i++) coocValue[term.items[i]!] = 0;
  });
  let best = 0;
  for (let c = 1; c < combos.length; c++) if (gains[c]! > gains[best]!) best = c;
  const users = Math.max(1, sequences.length);
  return {
    repeatWeight: combos[best]!.weight,
    repeatDecay: combos[best]!.weight === 0 ? 1 : combos[best]!.decay,
    validNdcg10: gains[best]! / users,
    withoutValidNdcg10: gains[0]! / users,
    users: sequences.length,
    repeatTargets,
  };
}
