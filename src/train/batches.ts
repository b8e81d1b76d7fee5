import type { LeaveOneOutSplit } from '../data/leave-one-out-split.js';
import type { Random } from '../random.js';

/** Sequences already in model indices: CSR offsets over items/types. */
export interface EncodedSequences {
  readonly offsets: Int32Array;
  /** Model item indices 1..V (0 never occurs here). */
  readonly items: Int32Array;
  readonly types: Uint8Array;
}

/** A left-padded batch, row-major [batchSize, length]; 0 is padding everywhere. */
export interface Batch {
  readonly batchSize: number;
  readonly length: number;
  readonly items: Int32Array;
  readonly types: Int32Array;
  /** Training batches: the next item at each position (0 = no target). */
  readonly targets: Int32Array;
}

/** Training pairs of sequence s that fit a window of maxLength: its length in a training batch. */
export function trainingWindow(split: LeaveOneOutSplit, s: number, maxLength: number): number {
  return Math.min(maxLength, split.trainLength[s]! - 1);
}

/** How often each item (1..numItems) occurs in the training events of the split (never held-out ones). */
export function trainingItemCounts(data: EncodedSequences, split: LeaveOneOutSplit, numItems: number): Float64Array {
  const counts = new Float64Array(numItems + 1);
  for (let s = 0; s < split.trainLength.length; s++) {
    const begin = data.offsets[s]!;
    for (let k = begin; k < begin + split.trainLength[s]!; k++) counts[data.items[k]!]!++;
  }
  return counts;
}

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
    }
  }
  return { batchSize, length, items, types, targets };
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

/**
 * Evaluation batch: for each sequence the `inputLength` first events are the
 * history (the training events for validation, plus the validation target for
 * test), most recent `maxLength` kept, right-aligned; the batch is as long as
 * its longest history.
 */
export function historyBatch(data: EncodedSequences, sequences: ArrayLike<number>, inputLength: (s: number) => number, maxLength: number): Batch {
  const batchSize = sequences.length;
  let length = 1;
  for (let row = 0; row < batchSize; row++) length = Math.max(length, Math.min(maxLength, inputLength(sequences[row]!)));
  const items = new Int32Array(batchSize * length);
  const types = new Int32Array(batchSize * length);
  for (let row = 0; row < batchSize; row++) {
    const s = sequences[row]!;
    const end = data.offsets[s]! + inputLength(s);
    const n = Math.min(length, inputLength(s));
    for (let k = 0; k < n; k++) {
      items[row * length + length - n + k] = data.items[end - n + k]!;
      types[row * length + length - n + k] = data.types[end - n + k]!;
    }
  }
  return { batchSize, length, items, types, targets: new Int32Array(0) };
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
