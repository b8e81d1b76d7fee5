import type { Random } from '../random.js';

/**
 * Ranking metrics for next-item prediction with one target per user.
 * Ranks are 0-based: rank 0 means the target scored highest. Ties count
 * against the target (an item scoring exactly the same ranks above it), so a
 * model that scores everything alike earns nothing.
 */

/** The rank of a held-out item the ranking could never show (the exclusion policy leaves it out): a miss at every cutoff. */
export const MISS = Infinity;

/** Items (1..n, index 0 is padding) scoring at least as high as the target, excluding `excluded` and the target itself. */
export function rankOfTarget(scores: ArrayLike<number>, target: number, excluded: ReadonlySet<number>): number {
  const threshold = scores[target]!;
  let rank = 0;
  for (let item = 1; item < scores.length; item++) {
    if (item !== target && scores[item]! >= threshold && !excluded.has(item)) rank++;
  }
  return rank;
}

/** Rank of the target among itself and the given candidates (the sampled protocol). */
export function rankAmongCandidates(scores: ArrayLike<number>, target: number, candidates: ArrayLike<number>): number {
  const threshold = scores[target]!;
  let rank = 0;
  for (let i = 0; i < candidates.length; i++) if (scores[candidates[i]!]! >= threshold) rank++;
  return rank;
}

export const DEFAULT_CUTOFFS = [1, 5, 10, 20] as const;

export interface RankingMetrics {
  readonly users: number;
  /** NDCG@k = 1 / log2(rank + 2) when rank < k. */
  readonly ndcg: Record<number, number>;
  /** HR@k (= Recall@k with one target): rank < k. */
  readonly hr: Record<number, number>;
  /** Mean reciprocal rank, untruncated. */
  readonly mrr: number;
}

export class MetricAccumulator {
  private users = 0;
  private readonly ndcgSums: number[];
  private readonly hitSums: number[];
  private mrrSum = 0;

  constructor(private readonly cutoffs: readonly number[] = DEFAULT_CUTOFFS) {
    this.ndcgSums = cutoffs.map(() => 0);
    this.hitSums = cutoffs.map(() => 0);
  }

  add(rank: number): void {
    this.users++;
    this.mrrSum += 1 / (rank + 1);
    this.cutoffs.forEach((k, i) => {
      if (rank < k) {
        this.hitSums[i]! += 1;
        this.ndcgSums[i]! += 1 / Math.log2(rank + 2);
      }
    });
  }

  result(): RankingMetrics {
    const n = Math.max(1, this.users);
    return {
      users: this.users,
      ndcg: Object.fromEntries(this.cutoffs.map((k, i) => [k, this.ndcgSums[i]! / n])),
      hr: Object.fromEntries(this.cutoffs.map((k, i) => [k, this.hitSums[i]! / n])),
      mrr: this.mrrSum / n,
    };
  }
}

/**
 * The SASRec paper's sampled protocol: `count` distinct items drawn uniformly
 * from those the user never interacted with (never the target). A user who
 * touched all but a few items of a small catalogue is ranked against all the
 * untouched ones. Sampled metrics overstate accuracy and can reorder models
 * (Krichene & Rendle, KDD 2020): report them only beside full-ranking
 * metrics, labelled as sampled.
 */
export function sampleNegatives(random: Random, numItems: number, interacted: ReadonlySet<number>, count = 100): Int32Array {
  // `interacted` holds catalogue items (1..numItems), so its size says how many are left without a scan.
  const available = numItems - interacted.size;
  if (available <= count) {
    const all: number[] = [];
    for (let item = 1; item <= numItems; item++) if (!interacted.has(item)) all.push(item);
    return Int32Array.from(all);
  }
  const chosen = new Set<number>();
  while (chosen.size < count) {
    const item = 1 + random.int(numItems);
    if (!interacted.has(item)) chosen.add(item);
  }
  return Int32Array.from(chosen);
}
