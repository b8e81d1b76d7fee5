import type { LeaveOneOutSplit } from '../data/leave-one-out-split.js';
import type { EncodedSequences } from '../data/encoded-sequences.js';
import { evaluateScorer, type BatchScorer, type Evaluation, type EvaluationOptions } from './evaluate.js';

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
 */
export const BASELINES = ['popularity', 'most-recent-item'] as const;
export type BaselineName = (typeof BASELINES)[number];

export function evaluateBaseline(name: BaselineName, numItems: number, data: EncodedSequences, split: LeaveOneOutSplit, options: EvaluationOptions): Evaluation {
  const visible = (s: number): number => split.trainLength[s]! + (options.phase === 'test' && isEvaluated(data, split, s) ? 1 : 0);
  const counts = new Float64Array(numItems + 1);
  let most = 0;
  forEachVisible(data, split, visible, (k) => {
    most = Math.max(most, ++counts[data.items[k]!]!);
  });
  // Popularity as a fraction below 1: a tie-breaker that never outweighs one transition.
  const popularity = new Float32Array(numItems + 1);
  for (let item = 1; item <= numItems; item++) popularity[item] = counts[item]! / (most + 1);
  const scorer: BatchScorer =
    name === 'popularity'
      ? (sequences) => {
          const scores = new Float32Array(sequences.length * (numItems + 1));
          for (let row = 0; row < sequences.length; row++) scores.set(popularity, row * (numItems + 1));
          return scores;
        }
      : transitionScorer(numItems, data, split, visible, popularity);
  return evaluateScorer(scorer, numItems, data, split, options);
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

/** Evaluated sequences hold back their last two events; the others are all training data. */
function isEvaluated(data: EncodedSequences, split: LeaveOneOutSplit, s: number): boolean {
  return split.trainLength[s]! < data.offsets[s + 1]! - data.offsets[s]!;
}
