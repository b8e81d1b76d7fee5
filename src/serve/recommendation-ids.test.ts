import { describe, expect, it } from 'vitest';
import { uuidV7Millis } from '../data/impressions.js';
import { RecommendationIds } from './recommendation-ids.js';

const UUID_V7 = /^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;

describe('RecommendationIds', () => {
  it('makes distinct UUIDv7s that sort in the order they were made, within a millisecond and across the pool refills', () => {
    const ids = new RecommendationIds();
    const made = Array.from({ length: 2_000 }, (_, i) => ids.next(1_700_000_000_000 + Math.floor(i / 300)));
    for (const id of made) expect(id).toMatch(UUID_V7);
    expect(new Set(made).size).toBe(made.length);
    expect([...made].sort()).toEqual(made);
    expect(uuidV7Millis(made[0]!)).toBe(1_700_000_000_000);
    expect(uuidV7Millis(made[1_999]!)).toBe(1_700_000_000_006);
  });

  it('never goes back when the clock does, and carries into the next millisecond when the counter wraps', () => {
    const ids = new RecommendationIds();
    const a = ids.next(2_000);
    const b = ids.next(1_000); // the clock stepped back
    expect(b > a).toBe(true);
    expect(uuidV7Millis(b)).toBe(2_000);
    // Force the counter to its last value: the next id moves to the next millisecond.
    (ids as unknown as { seq: number }).seq = -1;
    expect(uuidV7Millis(ids.next(2_000))).toBe(2_001);
  });

  it('draws fresh random bits for every id', () => {
    const ids = new RecommendationIds();
    const tails = new Set(Array.from({ length: 1_000 }, () => ids.next(5_000).slice(-12)));
    expect(tails.size).toBe(1_000);
  });
});
