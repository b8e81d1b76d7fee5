import { describe, expect, it } from 'vitest';
import { Random } from '../random.js';
import { compareMeans, compareProportions, mean, normalCdf, proportion, sampleSizePerVariant, zFor } from './online-tests.js';

describe('online statistics', () => {
  it('has the normal distribution right', () => {
    expect(zFor(0.95)).toBeCloseTo(1.959964, 5);
    expect(zFor(0.99)).toBeCloseTo(2.575829, 5);
    expect(normalCdf(1.959964)).toBeCloseTo(0.975, 6);
    expect(normalCdf(-3.5)).toBeCloseTo(0.000233, 6);
  });

  it('gives the Wilson interval of published examples, inside [0, 1] even at 0 and n', () => {
    // Wilson (1927) as tabulated by Newcombe (1998), method 3: 81/263 → 0.2553–0.3662; 15/148 → 0.0624–0.1605; 0/20 → 0–0.1611.
    const a = proportion(81, 263);
    expect([a.low, a.high].map((x) => Math.round(x * 10_000) / 10_000)).toEqual([0.2553, 0.3662]);
    const b = proportion(15, 148);
    expect([b.low, b.high].map((x) => Math.round(x * 10_000) / 10_000)).toEqual([0.0624, 0.1605]);
    const c = proportion(0, 20);
    expect(c.low).toBe(0);
    expect(c.high).toBeCloseTo(0.1611, 4);
    expect(proportion(20, 20).high).toBe(1);
    expect(proportion(0, 0)).toEqual({ value: 0, low: 0, high: 1 });
  });

  it('covers the true rate and the true mean about 95 % of the time (simulated, seeded)', () => {
    const random = new Random(7);
    let rateCovered = 0;
    let meanCovered = 0;
    const trials = 2_000;
    for (let t = 0; t < trials; t++) {
      let hits = 0;
      let sum = 0;
      let squares = 0;
      for (let i = 0; i < 400; i++) {
        if (random.next() < 0.03) hits++;
        const x = random.next() < 0.03 ? 20 + 40 * random.next() : 0; // revenue: mostly zero, sometimes 20-60
        sum += x;
        squares += x * x;
      }
      const p = proportion(hits, 400);
      if (p.low <= 0.03 && 0.03 <= p.high) rateCovered++;
      const m = mean(sum, squares, 400);
      if (m.low <= 1.2 && 1.2 <= m.high) meanCovered++;
    }
    // Binomial(2000, 0.95) has a standard deviation of 9.7: allow for the methods' known small deviations.
    expect(rateCovered / trials).toBeGreaterThan(0.93);
    expect(rateCovered / trials).toBeLessThan(0.975);
    expect(meanCovered / trials).toBeGreaterThan(0.92);
  });

  it('compares proportions and means: the z statistics of a textbook example, lift with its interval', () => {
    // 200/1000 against 250/1000: pooled p = 0.225, z = 0.05 / sqrt(0.225·0.775·0.002) = 2.6774.
    const c = compareProportions({ successes: 200, n: 1000 }, { successes: 250, n: 1000 });
    expect(c.test).toBe('two-proportion z-test');
    expect(c.pValue).toBeCloseTo(2 * (1 - normalCdf(2.6774)), 4);
    expect(c.pValue).toBeLessThan(0.01);
    expect(c.difference.value).toBeCloseTo(0.05, 10);
    expect(c.lift!.value).toBeCloseTo(0.25, 10);
    expect(c.lift!.low).toBeGreaterThan(0);
    expect(c.lift!.high).toBeGreaterThan(0.25);
    expect(c.pWorse).toBeGreaterThan(0.99);
    const worse = compareProportions({ successes: 250, n: 1000 }, { successes: 200, n: 1000 });
    expect(worse.pWorse).toBeCloseTo(1 - c.pWorse, 10);
    expect(compareProportions({ successes: 0, n: 10 }, { successes: 3, n: 10 }).lift).toBeNull();

    const m = compareMeans({ sum: 1_000, sumOfSquares: 21_000, n: 100 }, { sum: 1_200, sumOfSquares: 29_000, n: 100 });
    // means 10 and 12, variances (21000 − 10000)/99 and (29000 − 14400)/99: z = 2 / sqrt(1.1111 + 1.4747) = 1.2439.
    expect(m.pValue).toBeCloseTo(2 * (1 - normalCdf(1.2439)), 3);
    expect(m.lift!.value).toBeCloseTo(0.2, 10);
  });

  it('sizes a test as the closed form says, and such a test detects the change about 80 % of the time', () => {
    // 10 % → 12 %, alpha 0.05, power 0.8: 3,841 per group by the pooled-variance formula.
    const n = sampleSizePerVariant(0.1, 0.12);
    expect(n).toBeGreaterThan(3_800);
    expect(n).toBeLessThan(3_900);
    const random = new Random(11);
    let detected = 0;
    const trials = 300;
    for (let t = 0; t < trials; t++) {
      let a = 0;
      let b = 0;
      for (let i = 0; i < n; i++) {
        if (random.next() < 0.1) a++;
        if (random.next() < 0.12) b++;
      }
      if (compareProportions({ successes: a, n }, { successes: b, n }).pValue < 0.05) detected++;
    }
    expect(detected / trials).toBeGreaterThan(0.72);
    expect(detected / trials).toBeLessThan(0.88);
  });
});
