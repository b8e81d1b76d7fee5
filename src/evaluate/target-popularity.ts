import type { LeaveOneOutSplit } from '../data/leave-one-out-split.js';
import { trainingItemCounts, type EncodedSequences } from '../data/encoded-sequences.js';

/**
 * Bands of how often the held-out item occurs in the training events. Error
 * analysis for data scientists: on amazon-games most of what the sampled
 * protocol loses is held-out items seen a handful of times or never (docs/experiments.md,
 * "Where the model loses").
 */
export const POPULARITY_BANDS = [
  { label: '0', max: 0 },
  { label: '1-2', max: 2 },
  { label: '3-5', max: 5 },
  { label: '6-10', max: 10 },
  { label: '11-20', max: 20 },
  { label: '21-50', max: 50 },
  { label: '51-100', max: 100 },
  { label: '>100', max: Infinity },
] as const;

/** Index into POPULARITY_BANDS of an item occurring `count` times in training. */
export function popularityBand(count: number): number {
  return POPULARITY_BANDS.findIndex((band) => count <= band.max);
}

/** The evaluation `groups` option that bands held-out items by their training occurrences. */
export function targetPopularityGroups(data: EncodedSequences, split: LeaveOneOutSplit, numItems: number): { count: number; of: (target: number) => number } {
  const counts = trainingItemCounts(data, split, numItems);
  return { count: POPULARITY_BANDS.length, of: (target) => popularityBand(counts[target]!) };
}
