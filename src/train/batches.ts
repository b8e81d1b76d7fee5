import type { LeaveOneOutSplit } from '../data/leave-one-out-split.js';
import { trainingWindow, type Batch, type EncodedSequences } from '../data/encoded-sequences.js';
import type { Random } from '../random.js';

/**
 * Training batch: for each sequence, its training events e0..e(L-1) become
 * inputs e0..e(L-2) with targets e1..e(L-1) (every position predicts the next
 * event), the most recent `maxLength` of them, right-aligned. The batch is
 * only as long as its longest window: columns that would be padding in every
 * row are never built, so short histories cost what they are worth.
 */
export function trainingBatch(data: EncodedSequences, split: LeaveOneOutSplit, sequences: ArrayLike<number>, maxLength: number): Batch {
  const batchSize = sequences.length;
  let length = 1;
  for (let row = 0; row < batchSize; row++) length = Math.max(length, trainingWindow(split, sequences[row]!, maxLength));
  const items = new Int32Array(batchSize * length);
  const types = new Int32Array(batchSize * length);
  const targets = new Int32Array(batchSize * length);
  const targetTypes = new Int32Array(batchSize * length);
  for (let row = 0; row < batchSize; row++) {
    const s = sequences[row]!;
    const start = data.offsets[s]!;
    const pairs = trainingWindow(split, s, maxLength);
    const firstTarget = start + split.trainLength[s]! - pairs; // targets are the last `pairs` training events
    for (let k = 0; k < pairs; k++) {
      const at = row * length + (length - pairs + k);
      items[at] = data.items[firstTarget + k - 1]!;
      types[at] = data.types[firstTarget + k - 1]!;
      targets[at] = data.items[firstTarget + k]!;
      targetTypes[at] = data.types[firstTarget + k]!;
    }
  }
  return { batchSize, length, items, types, targets, targetTypes };
}

/**
 * Stochastic shared embeddings (Wu et al., NeurIPS 2019) on a training batch:
 * each input event's item (never padding) becomes a uniformly drawn item of
 * 1..numItems with the given probability, in place; targets are untouched.
 * A regulariser: no item's embedding can rely on always seeing exactly its
 * neighbours, which on amazon-games helped items seen only a few times.
 */
export function replaceInputItems(items: Int32Array, probability: number, numItems: number, random: Random): void {
  if (probability <= 0) return;
  for (let i = 0; i < items.length; i++) if (items[i]! > 0 && random.next() < probability) items[i] = 1 + random.int(numItems);
}


/** Batches per bucket when batches are grouped by length: big enough that every bucket sees the whole length distribution. */
export const BUCKET_BATCHES = 32;

/**
 * Sequences with at least one (input, target) pair of training data,
 * shuffled and cut into batches, every sequence once. With `bucketByLength`
 * the shuffled order is cut into buckets of BUCKET_BATCHES batches, each
 * bucket is sorted by window length before it is cut, and the batches are
 * shuffled again: batch composition stays random from epoch to epoch, but a
 * batch holds histories of similar length, so it carries little padding
 * (on amazon-games, ~8 events per history against a 50-event window).
 */
export function epochBatches(split: LeaveOneOutSplit, batchSize: number, random: Random, bucketByLength = false, maxLength = Infinity): Int32Array[] {
  const trainable: number[] = [];
  split.trainLength.forEach((length, s) => {
    if (length >= 2) trainable.push(s);
  });
  shuffle(trainable, random);
  const batches: Int32Array[] = [];
  const bucket = bucketByLength ? batchSize * BUCKET_BATCHES : batchSize;
  for (let i = 0; i < trainable.length; i += bucket) {
    const members = trainable.slice(i, i + bucket);
    if (bucketByLength) members.sort((a, b) => trainingWindow(split, a, maxLength) - trainingWindow(split, b, maxLength)); // stable: ties keep the shuffled order
    for (let j = 0; j < members.length; j += batchSize) batches.push(Int32Array.from(members.slice(j, j + batchSize)));
  }
  if (bucketByLength) shuffle(batches, random);
  return batches;
}

function shuffle<T>(values: T[], random: Random): void {
  for (let i = values.length - 1; i > 0; i--) {
    const j = random.int(i + 1);
    [values[i], values[j]] = [values[j]!, values[i]!];
  }
}
