import { inputLengths, type LeaveOneOutSplit } from '../data/leave-one-out-split.js';
import type { ExcludePolicy } from '../data/exclusion.js';
import type { EncodedSequences } from '../data/encoded-sequences.js';
import { CooccurrenceBlend, type ItemNeighbours } from '../model/cooccurrence-blend.js';
import { ITEM_NEIGHBOURS, itemCooccurrence, strongestNeighbours } from '../model/item-cooccurrence.js';
import { evaluateScorer, evaluateScorers, type BatchScorer, type Evaluation, type EvaluationOptions } from './evaluate.js';

/**
 * Baselines every model is judged against, on the same split and protocol.
 * Each sees exactly what the model sees: for validation the training events,
 * for test also the validation targets; never the held-out item.
 *
 * - popularity: every history gets the same ranking, by how often each item
 *   occurs in the visible events.
 * - most-recent-item: ranks items by how often they followed the history's
 *   most recent item in the visible events (a first-order Markov chain),
 *   ties broken by popularity; a history whose last item was never followed
 *   falls back to popularity.
 * - item-knn: the co-occurrence scores alone, as the model's co-occurrence
 *   term computes them (each item's ITEM_NEIGHBOURS strongest neighbours by cosine over
 *   the visible histories; Σ_h decay^age(h) · cos(h, j) over the history's
 *   items, age 0 the newest), ties broken by popularity. The decay is chosen
 *   on validation users (up to 5,000, from KNN_DECAYS), never on the test
 *   split. It shows how much of the model's result needs attention at all.
 * - history-frequency: the "buy it again" list: the history's own items, the
 *   most frequent first (ties: the most recent), then every other item by
 *   popularity. It scores nothing the exclusion policy leaves out, so it
 *   matters where repeats may be shown (`--exclude none`, or viewed items
 *   under `purchased`).
 */
export const BASELINES = ['popularity', 'most-recent-item', 'item-knn', 'history-frequency'] as const;
export type BaselineName = (typeof BASELINES)[number];

/** Decays the item-knn baseline chooses from, on validation users. */
export const KNN_DECAYS = [0.1, 0.3, 0.5, 0.7, 0.9, 1] as const;
/** Validation users the decay is chosen on, as the term's weights are (BLEND_FIT_USERS). */
const KNN_FIT_USERS = 5_000;

/** A baseline's result, with what it chose on validation users where it chooses anything. */
export type BaselineEvaluation = Evaluation & { readonly chosen?: { readonly decay: number; readonly validNdcg10: number; readonly users: number } };

/**
 * trainingNeighbours: the training events' ITEM_NEIGHBOURS strongest neighbours per item, when the
 * caller has them already (the training job, for its co-occurrence term); item-knn builds them otherwise.
 */
export function evaluateBaseline(name: BaselineName, numItems: number, data: EncodedSequences, split: LeaveOneOutSplit, options: EvaluationOptions, trainingNeighbours?: ItemNeighbours): BaselineEvaluation {
  const popularity = popularityOf(numItems, data, split, options.phase);
  const visible = visibleLength(split, options.phase);
  if (name === 'popularity') {
    const scorer: BatchScorer = (sequences) => {
      const scores = new Float32Array(sequences.length * (numItems + 1));
      for (let row = 0; row < sequences.length; row++) scores.set(popularity, row * (numItems + 1));
      return scores;
    };
    return evaluateScorer(scorer, numItems, data, split, options);
  }
  if (name === 'history-frequency') return evaluateScorer(historyFrequencyScorer(numItems, data, popularity), numItems, data, split, options);
  if (name === 'most-recent-item') return evaluateScorer(transitionScorer(numItems, data, split, visible, popularity), numItems, data, split, options);
  // The decay is chosen on what the validation phase sees; the validation phase itself reuses it all.
  const validNeighbours = trainingNeighbours ?? visibleNeighbours(numItems, data, split, 'valid');
  const validPopularity = options.phase === 'valid' ? popularity : popularityOf(numItems, data, split, 'valid');
  const chosen = chooseKnnDecay(numItems, data, split, validNeighbours, validPopularity, options.exclude);
  const neighbours = options.phase === 'valid' ? validNeighbours : visibleNeighbours(numItems, data, split, options.phase);
  return { ...evaluateScorer(knnScorer(numItems, data, neighbours, chosen.decay, popularity), numItems, data, split, options), chosen };
}

/** Events of sequence s a baseline sees: the history of the phase's target (the training events where s is not evaluated). */
function visibleLength(split: LeaveOneOutSplit, phase: EvaluationOptions['phase']): (s: number) => number {
  const inputs = inputLengths(split, phase);
  return (s) => inputs[s]!;
}

/** Popularity in the visible events as a fraction below 1: a tie-breaker that never outweighs one transition. */
function popularityOf(numItems: number, data: EncodedSequences, split: LeaveOneOutSplit, phase: EvaluationOptions['phase']): Float32Array {
  const counts = new Float64Array(numItems + 1);
  let most = 0;
  forEachVisible(data, split, visibleLength(split, phase), (k) => {
    most = Math.max(most, ++counts[data.items[k]!]!);
  });
  const popularity = new Float32Array(numItems + 1);
  for (let item = 1; item <= numItems; item++) popularity[item] = counts[item]! / (most + 1);
  return popularity;
}

function visibleNeighbours(numItems: number, data: EncodedSequences, split: LeaveOneOutSplit, phase: EvaluationOptions['phase']): ItemNeighbours {
  const visible = visibleLength(split, phase);
  const trainLength = Int32Array.from({ length: split.trainLength.length }, (_, s) => visible(s));
  return strongestNeighbours(itemCooccurrence(data, { trainLength }, numItems), ITEM_NEIGHBOURS);
}

/**
 * Each history item scores how often it occurs, plus 0.5 × how recent its last occurrence is (position / length)
 * and 0.4 × popularity (below 1), so counts decide first, then recency, then popularity; other items 0.4 × popularity.
 */
function historyFrequencyScorer(numItems: number, data: EncodedSequences, popularity: Float32Array): BatchScorer {
  return perHistoryScorer(numItems, data, popularity.map((p) => 0.4 * p), (row, history) => {
    const last = new Map<number, number>();
    history.forEach((item, k) => {
      row[item]! += 1;
      last.set(item, k + 1);
    });
    for (const [item, position] of last) row[item]! += (0.5 * position) / history.length;
  });
}

/** Σ_h decay^age(h) · cos(h, j), plus popularity scaled far below any similarity as the tie-breaker. */
function knnScorer(numItems: number, data: EncodedSequences, neighbours: ItemNeighbours, decay: number, popularity: Float32Array): BatchScorer {
  const sums = new CooccurrenceBlend(neighbours, { weight: 1, scale: 1, decay });
  return perHistoryScorer(numItems, data, popularity.map((p) => p * 1e-6), (row, history) => {
    const term = sums.similaritySums(history);
    for (let i = 0; i < term.items.length; i++) row[term.items[i]!]! += term.values[i]!;
  });
}

/** A scorer whose every row starts as `base` (the tie-breakers) and gets what `add` makes of that sequence's history. */
function perHistoryScorer(numItems: number, data: EncodedSequences, base: Float32Array, add: (row: Float32Array, history: Int32Array) => void): BatchScorer {
  return (sequences, inputLength) => {
    const scores = new Float32Array(sequences.length * (numItems + 1));
    sequences.forEach((s, r) => {
      const row = scores.subarray(r * (numItems + 1), (r + 1) * (numItems + 1));
      row.set(base);
      const begin = data.offsets[s]!;
      add(row, data.items.subarray(begin, begin + inputLength(s)));
    });
    return scores;
  };
}

/**
 * The decay with the best full-ranking NDCG@10 on up to KNN_FIT_USERS validation users (an even stride
 * over them); ties to the first. neighbours and popularity: those of the validation phase's visible events.
 */
function chooseKnnDecay(numItems: number, data: EncodedSequences, split: LeaveOneOutSplit, neighbours: ItemNeighbours, popularity: Float32Array, exclude: ExcludePolicy | undefined): { decay: number; validNdcg10: number; users: number } {
  const stride = Math.max(1, Math.ceil(split.evaluated.length / KNN_FIT_USERS));
  const sequences = split.evaluated.filter((_, i) => i % stride === 0);
  const scorers = KNN_DECAYS.map((decay) => knnScorer(numItems, data, neighbours, decay, popularity));
  const results = evaluateScorers((batch, inputLength) => scorers.map((scorer) => scorer(batch, inputLength)), scorers.length, numItems, data, split, { phase: 'valid', sequences, ...(exclude && { exclude }) });
  let best = 0;
  results.forEach((r, i) => {
    if (r.full.ndcg[10]! > results[best]!.full.ndcg[10]!) best = i;
  });
  return { decay: KNN_DECAYS[best]!, validNdcg10: results[best]!.full.ndcg[10]!, users: sequences.length };
}

function transitionScorer(numItems: number, data: EncodedSequences, split: LeaveOneOutSplit, visible: (s: number) => number, popularity: Float32Array): BatchScorer {
  const followers = new Map<number, Map<number, number>>();
  forEachVisible(data, split, visible, (k, first) => {
    if (k === first) return;
    const from = data.items[k - 1]!;
    let row = followers.get(from);
    if (!row) followers.set(from, (row = new Map()));
    row.set(data.items[k]!, (row.get(data.items[k]!) ?? 0) + 1);
  });
  return (sequences, inputLength) => {
    const scores = new Float32Array(sequences.length * (numItems + 1));
    sequences.forEach((s, row) => {
      const at = row * (numItems + 1);
      scores.set(popularity, at);
      const length = inputLength(s);
      if (length === 0) return;
      const last = data.items[data.offsets[s]! + length - 1]!;
      for (const [item, count] of followers.get(last) ?? []) scores[at + item]! += count;
    });
    return scores;
  };
}

function forEachVisible(data: EncodedSequences, split: LeaveOneOutSplit, visible: (s: number) => number, visit: (k: number, first: number) => void): void {
  for (let s = 0; s < split.trainLength.length; s++) {
    const first = data.offsets[s]!;
    for (let k = first; k < first + visible(s); k++) visit(k, first);
  }
}

