/**
 * Extends a history by `steps` items, keeping the `beamWidth` most probable
 * partial continuations at each step (greedy search is beamWidth 1). The
 * model is a function from histories to next-item log-probabilities, so the
 * search is independent of how scores are computed and is tested on tables.
 */
export type NextItemLogProbs = (histories: readonly (readonly number[])[]) => Float32Array[] | Promise<Float32Array[]>;

export interface BeamSearchOptions {
  readonly steps: number;
  readonly beamWidth: number;
  /** Allow an item already in the history or the continuation (default false). */
  readonly allowRepeats?: boolean;
  /** Items never proposed (e.g. purchased, inactive). */
  readonly exclude?: ReadonlySet<number>;
  /** Items that may be proposed at all (e.g. active, in a category); default: every item. */
  readonly allow?: (item: number) => boolean;
}

export interface Continuation {
  readonly items: number[];
  /** Sum of the log-probabilities of the chosen items. */
  readonly logProb: number;
  /** Log-probability of each chosen item given the history and the items before it. */
  readonly stepLogProbs: number[];
}

export async function beamSearch(history: readonly number[], logProbs: NextItemLogProbs, options: BeamSearchOptions): Promise<Continuation[]> {
  if (!Number.isInteger(options.steps) || options.steps < 1) throw new RangeError('steps must be a positive integer');
  if (!Number.isInteger(options.beamWidth) || options.beamWidth < 1) throw new RangeError('beamWidth must be a positive integer');
  let beams: Continuation[] = [{ items: [], logProb: 0, stepLogProbs: [] }];
  for (let step = 0; step < options.steps; step++) {
    const scores = await logProbs(beams.map((b) => [...history, ...b.items]));
    const candidates: Continuation[] = [];
    beams.forEach((beam, b) => {
      const row = scores[b]!;
      const used = options.allowRepeats ? undefined : new Set([...history, ...beam.items]);
      // Best beamWidth extensions of this beam (more cannot survive the global cut).
      for (const item of topIndices(row, options.beamWidth, (i) => i !== 0 && !used?.has(i) && !options.exclude?.has(i) && (options.allow?.(i) ?? true))) {
        candidates.push({ items: [...beam.items, item], logProb: beam.logProb + row[item]!, stepLogProbs: [...beam.stepLogProbs, row[item]!] });
      }
    });
    if (candidates.length === 0) break;
    candidates.sort((a, b) => b.logProb - a.logProb || compareItems(a.items, b.items));
    beams = candidates.slice(0, options.beamWidth);
  }
  return beams.filter((b) => b.items.length > 0);
}

/** Indices of the k largest values that pass `keep`, largest first (ties: lower index first). */
export function topIndices(values: ArrayLike<number>, k: number, keep: (index: number) => boolean = () => true): number[] {
  const best: number[] = [];
  for (let i = 0; i < values.length; i++) {
    // The cheap test first: most values cannot enter a full list, and keep() need not run for them.
    if (best.length === k && values[i]! <= values[best[k - 1]!]!) continue;
    if (Number.isNaN(values[i]!) || !keep(i)) continue;
    let at = best.length === k ? k - 1 : best.length;
    if (best.length < k) best.push(i);
    while (at > 0 && values[best[at - 1]!]! < values[i]!) {
      best[at] = best[at - 1]!;
      at--;
    }
    best[at] = i;
  }
  return best;
}

function compareItems(a: readonly number[], b: readonly number[]): number {
  for (let i = 0; i < Math.min(a.length, b.length); i++) if (a[i] !== b[i]) return a[i]! - b[i]!;
  return a.length - b.length;
}
