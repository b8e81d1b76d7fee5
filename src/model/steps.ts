/**
 * Long synchronous work (building a model version's tables, hundreds of
 * milliseconds) written once as a generator that yields between bounded
 * pieces: run to the end at once (runSteps), or with a pause between pieces
 * (runStepsPausing) so a thread that also serves requests answers them while
 * it builds (see ServedModel.loadPausing).
 */
export type Steps<T> = Generator<void, T, void>;

/** About this many 32-bit values copied or computed per piece: 128 Ki values (512 KiB) took 2-12 ms here, first touch of fresh pages included (1 Mi values took 40-55 ms). */
export const STEP_VALUES = 1 << 17;

export function runSteps<T>(steps: Steps<T>): T {
  for (;;) {
    const next = steps.next();
    if (next.done) return next.value;
  }
}

export async function runStepsPausing<T>(steps: Steps<T>, pause: () => Promise<void>): Promise<T> {
  for (;;) {
    const next = steps.next();
    if (next.done) return next.value;
    await pause();
  }
}

/** Calls `row(r)` for r in [from, to), yielding after every `perStep` rows (at least one). */
export function* rowSteps(from: number, to: number, valuesPerRow: number, row: (r: number) => void): Steps<void> {
  const perStep = Math.max(1, Math.floor(STEP_VALUES / Math.max(1, valuesPerRow)));
  for (let r = from; r < to; r++) {
    row(r);
    if ((r - from + 1) % perStep === 0 && r + 1 < to) yield;
  }
}

/** `target.set(source, at)` in pieces of STEP_VALUES values. */
export function* copySteps<T extends Float32Array | Int8Array | Int32Array>(target: T, source: T, at = 0): Steps<void> {
  if (at < 0 || at + source.length > target.length) throw new RangeError(`${source.length} values do not fit at ${at} in ${target.length}`);
  for (let from = 0; from < source.length; from += STEP_VALUES) {
    target.set(source.subarray(from, Math.min(source.length, from + STEP_VALUES)) as never, at + from);
    if (from + STEP_VALUES < source.length) yield;
  }
}
