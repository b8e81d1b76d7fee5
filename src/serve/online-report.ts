import { NO_COUNTS, type Counts, type OnlineCounts } from '../data/online-metrics.js';
import { compareMeans, compareProportions, mean, proportion, type Comparison, type Interval } from '../stats/online-tests.js';

/** One group's online metrics, each with its 95 % interval. */
export interface OnlineMetrics {
  readonly impressions: number;
  /** Share of impressions followed by an attributed view of an item they showed. */
  readonly clickThrough: Interval;
  /** Share followed by an attributed add-to-cart. */
  readonly cartRate: Interval;
  /** Share followed by an attributed purchase. */
  readonly conversion: Interval;
  /** Attributed purchase revenue (value × quantity) per 1,000 impressions. */
  readonly revenuePerThousand: Interval;
}

/** Sums counts over buckets (or groups) into one. */
export function addCounts(rows: readonly OnlineCounts[]): Counts {
  const total = { ...NO_COUNTS };
  for (const r of rows) {
    total.impressions += r.impressions;
    total.viewed += r.viewed;
    total.carted += r.carted;
    total.purchased += r.purchased;
    total.revenue += r.revenue;
    total.revenueSquares += r.revenueSquares;
  }
  return total;
}

export function onlineMetrics(c: Counts): OnlineMetrics {
  const perImpression = mean(c.revenue, c.revenueSquares, c.impressions);
  const round = (i: Interval, digits = 6): Interval => ({ value: Number(i.value.toFixed(digits)), low: Number(i.low.toFixed(digits)), high: Number(i.high.toFixed(digits)) });
  return {
    impressions: c.impressions,
    clickThrough: round(proportion(c.viewed, c.impressions)),
    cartRate: round(proportion(c.carted, c.impressions)),
    conversion: round(proportion(c.purchased, c.impressions)),
    // Revenue is never negative: the normal interval's lower end is cut at 0.
    revenuePerThousand: round({ value: perImpression.value * 1000, low: Math.max(0, perImpression.low * 1000), high: perImpression.high * 1000 }, 4),
  };
}

/** A variant against control: each rate by the two-proportion z-test, revenue by Welch's. */
export interface VariantComparison {
  readonly clickThrough: Comparison;
  readonly cartRate: Comparison;
  readonly conversion: Comparison;
  readonly revenuePerImpression: Comparison;
}

export function compareToControl(control: Counts, variant: Counts): VariantComparison {
  const rate = (k: 'viewed' | 'carted' | 'purchased') => compareProportions({ successes: control[k], n: control.impressions }, { successes: variant[k], n: variant.impressions });
  return {
    clickThrough: rate('viewed'),
    cartRate: rate('carted'),
    conversion: rate('purchased'),
    revenuePerImpression: compareMeans(
      { sum: control.revenue, sumOfSquares: control.revenueSquares, n: control.impressions },
      { sum: variant.revenue, sumOfSquares: variant.revenueSquares, n: variant.impressions },
    ),
  };
}
