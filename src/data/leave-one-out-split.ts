/**
 * The standard leave-one-out protocol of sequential recommendation (SASRec
 * and successors). For a sequence of n events with n >= minLength (4):
 * training data is its first n - 2 events, the validation target is event
 * n - 2 (input: the training events), the test target is event n - 1
 * (input: training events + validation target). Shorter sequences are all
 * training data and are not evaluated.
 */
export interface LeaveOneOutSplit {
  /** Per sequence: how many leading events are training data. */
  readonly trainLength: Int32Array;
  /** Indices of the evaluated sequences, ascending. */
  readonly evaluated: Int32Array;
  /** Per evaluated sequence: index (into the item arrays) of the validation target. */
  readonly validIndex: Int32Array;
  /** Per evaluated sequence: index of the test target. */
  readonly testIndex: Int32Array;
}

export const DEFAULT_MIN_EVALUATED_LENGTH = 4;

export function leaveOneOutSplit(offsets: Int32Array, minLength = DEFAULT_MIN_EVALUATED_LENGTH): LeaveOneOutSplit {
  if (minLength < 3) throw new RangeError('minLength must be at least 3: one training event, one validation and one test target');
  const sequences = offsets.length - 1;
  const trainLength = new Int32Array(sequences);
  const evaluated: number[] = [];
  for (let s = 0; s < sequences; s++) {
    const length = offsets[s + 1]! - offsets[s]!;
    if (length >= minLength) {
      trainLength[s] = length - 2;
      evaluated.push(s);
    } else {
      trainLength[s] = length;
    }
  }
  const validIndex = new Int32Array(evaluated.length);
  const testIndex = new Int32Array(evaluated.length);
  evaluated.forEach((s, k) => {
    validIndex[k] = offsets[s + 1]! - 2;
    testIndex[k] = offsets[s + 1]! - 1;
  });
  return { trainLength, evaluated: Int32Array.from(evaluated), validIndex, testIndex };
}
