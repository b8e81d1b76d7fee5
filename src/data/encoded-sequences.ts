/**
 * Histories already in model indices, and what both training and evaluation
 * read from them: the items of the training split, and left-padded batches.
 */
import type { LeaveOneOutSplit } from './leave-one-out-split.js';

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
  /** Training batches: the event type of each position's target (0 = no target). */
  readonly targetTypes?: Int32Array;
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
