import { describe, expect, it } from 'vitest';
import { ingestionBudget } from './ingestion-budget.js';

describe('ingestionBudget', () => {
  // The full run of 2026-12-05 18:50 (bench/results/serve-2026-12-05T18-50-48-925Z.json): (a) at 500 pairs/s,
  // ingestion alone (5,072 batches of 100) and the mixed phase, 15 s each.
  const run = {
    cores: 2,
    shoppers: { server_cpu_s: 14.23, generator_cpu_s: 1.26, seconds: 15 },
    ingestion: { server_cpu_s: 20.49, generator_cpu_s: 0.89, seconds: 15, events: 507_200 },
    mixed: { server_cpu_s: 18.08, generator_cpu_s: 1.36, seconds: 15 },
  };

  it('leaves the cores the shoppers do not use to ingestion at its measured CPU per event', () => {
    const budget = ingestionBudget(run);
    expect(budget.shoppers_cores).toBeCloseTo(15.49 / 15, 3);
    expect(budget.cpu_us_per_event).toBeCloseTo(42.2, 1);
    // (2 − 1.0327) ÷ 42.15 µs
    expect(budget.bound_events_per_s).toBe(Math.floor((2 - 15.49 / 15) / (21.38 / 507_200)));
    expect(budget.bound_events_per_s).toBeGreaterThan(22_900);
    expect(budget.bound_events_per_s).toBeLessThan(23_000);
    expect(budget.used_cores).toBeCloseTo(19.44 / 15, 3);
  });

  it('is zero when the shoppers alone take every core', () => {
    expect(ingestionBudget({ ...run, shoppers: { server_cpu_s: 29, generator_cpu_s: 2, seconds: 15 } }).bound_events_per_s).toBe(0);
  });

  it('refuses runs it cannot divide by', () => {
    expect(() => ingestionBudget({ ...run, ingestion: { ...run.ingestion, events: 0 } })).toThrow(/no event/);
    expect(() => ingestionBudget({ ...run, mixed: { ...run.mixed, seconds: 0 } })).toThrow(/mixed: seconds/);
    expect(() => ingestionBudget({ ...run, cores: 0 })).toThrow(/cores/);
  });
});
