import jstat from 'jstat';

/**
 * The statistics of online metrics and experiments: intervals for rates and
 * means, and tests between a variant and its control. All are large-sample
 * (normal) methods, the ones A/B tools report. The normal distribution and
 * its quantiles come from jstat 1.9.6: quantile(0.975) = 1.9599639845, exact
 * to 1e-12. simple-statistics 7.12.1 was tried first; its probit(0.975) is
 * 1.95716 (0.14 % low), which moved Wilson bounds of published examples in
 * the fourth decimal (src/stats/online-tests.test.ts caught it). @stdlib's
 * normal quantile is as exact but brought 157 packages (17 MB) for two functions.
 */
const { normal } = jstat.jStat;

export interface Interval {
  readonly value: number;
  readonly low: number;
  readonly high: number;
}

/** The standard normal CDF. */
export function normalCdf(z: number): number {
  return normal.cdf(z, 0, 1);
}

/** z such that a two-sided interval at `confidence` is ±z (1.96 at 0.95). */
export function zFor(confidence: number): number {
  return normal.inv(1 - (1 - confidence) / 2, 0, 1);
}

/**
 * A proportion with its Wilson score interval: unlike the Wald interval it
 * stays inside [0, 1] and keeps its coverage for rare events such as
 * purchase conversion. With n = 0 the rate is unknown: [0, 1].
 */
export function proportion(successes: number, n: number, confidence = 0.95): Interval {
  if (n <= 0) return { value: 0, low: 0, high: 1 };
  const z = zFor(confidence);
  const p = successes / n;
  const z2 = z * z;
  const centre = (p + z2 / (2 * n)) / (1 + z2 / n);
  const half = (z / (1 + z2 / n)) * Math.sqrt((p * (1 - p)) / n + z2 / (4 * n * n));
  // At 0 and n the bound is exactly 0 or 1 (centre ∓ half equals it but for rounding).
  return { value: p, low: successes === 0 ? 0 : Math.max(0, centre - half), high: successes === n ? 1 : Math.min(1, centre + half) };
}

/** A mean from n observations' sum and sum of squares, with a normal interval (sample variance). */
export function mean(sum: number, sumOfSquares: number, n: number, confidence = 0.95): Interval {
  if (n <= 0) return { value: 0, low: 0, high: 0 };
  const m = sum / n;
  const variance = n > 1 ? Math.max(0, (sumOfSquares - n * m * m) / (n - 1)) : 0;
  const half = zFor(confidence) * Math.sqrt(variance / n);
  return { value: m, low: m - half, high: m + half };
}

export interface Comparison {
  /** The name of the test, for reports. */
  readonly test: string;
  /** variant − control, with its interval. */
  readonly difference: Interval;
  /** variant / control − 1, with its interval (delta method on the log ratio); null when control is 0. */
  readonly lift: Interval | null;
  /** Two-sided p-value of "no difference". */
  readonly pValue: number;
  /** One-sided p-value of "the variant is not worse" (small: the variant is worse), for guard rails. */
  readonly pWorse: number;
}

/**
 * Two proportions (e.g. purchase conversion of a variant against control):
 * the pooled two-proportion z-test for the p-values, the unpooled standard
 * error for the difference's interval.
 */
export function compareProportions(control: { successes: number; n: number }, variant: { successes: number; n: number }, confidence = 0.95): Comparison {
  const z = zFor(confidence);
  const pa = control.n > 0 ? control.successes / control.n : 0;
  const pb = variant.n > 0 ? variant.successes / variant.n : 0;
  const seDiff = Math.sqrt((control.n > 0 ? (pa * (1 - pa)) / control.n : 0) + (variant.n > 0 ? (pb * (1 - pb)) / variant.n : 0));
  const pooled = control.n + variant.n > 0 ? (control.successes + variant.successes) / (control.n + variant.n) : 0;
  const sePooled = Math.sqrt(pooled * (1 - pooled) * ((control.n > 0 ? 1 / control.n : 0) + (variant.n > 0 ? 1 / variant.n : 0)));
  const stat = sePooled > 0 ? (pb - pa) / sePooled : 0;
  const lift =
    control.successes > 0 && variant.successes > 0
      ? (() => {
          // log(pb/pa) has variance (1−pa)/(na pa) + (1−pb)/(nb pb).
          const seLog = Math.sqrt((1 - pa) / (control.n * pa) + (1 - pb) / (variant.n * pb));
          const log = Math.log(pb / pa);
          return { value: pb / pa - 1, low: Math.exp(log - z * seLog) - 1, high: Math.exp(log + z * seLog) - 1 };
        })()
      : control.successes > 0
        ? { value: pb / pa - 1, low: -1, high: pb / pa - 1 }
        : null;
  return {
    test: 'two-proportion z-test',
    difference: { value: pb - pa, low: pb - pa - z * seDiff, high: pb - pa + z * seDiff },
    lift,
    pValue: 2 * (1 - normalCdf(Math.abs(stat))),
    pWorse: normalCdf(stat),
  };
}

/**
 * Two means from sums and sums of squares (e.g. revenue per impression):
 * Welch's statistic with the normal distribution (large samples).
 */
export function compareMeans(control: { sum: number; sumOfSquares: number; n: number }, variant: { sum: number; sumOfSquares: number; n: number }, confidence = 0.95): Comparison {
  const z = zFor(confidence);
  const stats = (g: { sum: number; sumOfSquares: number; n: number }) => {
    const m = g.n > 0 ? g.sum / g.n : 0;
    const v = g.n > 1 ? Math.max(0, (g.sumOfSquares - g.n * m * m) / (g.n - 1)) : 0;
    return { m, v, n: g.n };
  };
  const a = stats(control);
  const b = stats(variant);
  const se = Math.sqrt((a.n > 0 ? a.v / a.n : 0) + (b.n > 0 ? b.v / b.n : 0));
  const diff = b.m - a.m;
  const stat = se > 0 ? diff / se : 0;
  return {
    test: "Welch's z-test (means, large samples)",
    difference: { value: diff, low: diff - z * se, high: diff + z * se },
    lift: a.m !== 0 ? { value: b.m / a.m - 1, low: (diff - z * se) / a.m, high: (diff + z * se) / a.m } : null,
    pValue: 2 * (1 - normalCdf(Math.abs(stat))),
    pWorse: normalCdf(stat),
  };
}

/**
 * Shoppers per variant that a two-sided two-proportion z-test at `alpha`
 * needs to detect a change from `base` to `target` with probability `power`
 * (the usual closed form with the pooled variance under the null).
 */
export function sampleSizePerVariant(base: number, target: number, alpha = 0.05, power = 0.8): number {
  const za = normal.inv(1 - alpha / 2, 0, 1);
  const zb = normal.inv(power, 0, 1);
  const mid = (base + target) / 2;
  const numerator = za * Math.sqrt(2 * mid * (1 - mid)) + zb * Math.sqrt(base * (1 - base) + target * (1 - target));
  return Math.ceil((numerator * numerator) / ((target - base) * (target - base)));
}
