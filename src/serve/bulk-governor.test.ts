import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { BulkGovernor, SLOW_SHARE } from './bulk-governor.js';

/** A governor on vitest's fake clock: ticks are driven by hand, waits by advancing time. */
function governor(options: Partial<ConstructorParameters<typeof BulkGovernor>[0]> = {}) {
  const waits: number[] = [];
  const g = new BulkGovernor({ targetMs: 20, floorPerS: 1_000, stepPerS: 1_000, maxWaitMs: 2_000, now: () => Date.now(), onWait: (s) => waits.push(s), ...options });
  return { g, waits };
}

/** Records `n` live requests, `slow` of them over the target. */
function live(g: BulkGovernor, n: number, slow: number): void {
  for (let i = 0; i < n; i++) g.observeLive(i < slow ? 50 : 5);
}

/** Whether the promise has settled once pending callbacks ran. */
async function settled(p: Promise<void>): Promise<boolean> {
  let done = false;
  void p.then(() => (done = true));
  await Promise.resolve();
  await Promise.resolve();
  return done;
}

describe('BulkGovernor', () => {
  beforeEach(() => void vi.useFakeTimers());
  afterEach(() => void vi.useRealTimers());

  it('admits bulk batches at once while live requests are fast or absent', async () => {
    const { g, waits } = governor();
    live(g, 100, 0);
    g.tick();
    for (let i = 0; i < 50; i++) expect(await settled(g.admit(100))).toBe(true);
    expect(g.limitPerS).toBe(Infinity);
    expect(waits.every((w) => w === 0)).toBe(true);
  });

  it('halves the bulk rate from what it admitted when live requests are slow, and holds batches to it', async () => {
    const { g } = governor();
    vi.advanceTimersByTime(100);
    for (let i = 0; i < 30; i++) await g.admit(100); // 3,000 events in the tick: 30,000 events/s
    live(g, 100, Math.ceil(100 * SLOW_SHARE) + 1);
    g.tick();
    expect(g.limitPerS).toBeCloseTo(15_000, -2);

    // The first batch goes at once and puts the bucket in debt; the next waits 100 / 15,000 s ≈ 6.7 ms.
    expect(await settled(g.admit(100))).toBe(true);
    const second = g.admit(100);
    expect(await settled(second)).toBe(false);
    expect(g.waitingBatches).toBe(1);
    vi.advanceTimersByTime(5);
    expect(await settled(second)).toBe(false);
    vi.advanceTimersByTime(3);
    expect(await settled(second)).toBe(true);
  });

  it("lets a shop's waiting batches through ahead of the attributor's, which still go after their longest wait", async () => {
    const { g } = governor();
    live(g, 10, 10);
    g.tick(); // held to the floor, 1,000 events/s
    expect(await settled(g.admit(100))).toBe(true); // the bucket is now 100 events in debt
    const attribution = g.admit(100, 'attribution');
    const ingestion = g.admit(100);
    vi.advanceTimersByTime(100);
    // Out of debt after 100 ms: one batch may go, and it is the shop's, although the attributor's came first.
    expect(await settled(ingestion)).toBe(true);
    expect(await settled(attribution)).toBe(false);
    // A stream of the shop's batches keeps the attributor's waiting (to 1.9 s), but only up to its longest wait (2 s).
    const more: Promise<void>[] = [];
    for (let ms = 200; ms < 2_000; ms += 100) {
      more.push(g.admit(100));
      vi.advanceTimersByTime(100);
      expect(await settled(attribution)).toBe(false);
    }
    vi.advanceTimersByTime(100);
    expect(await settled(attribution)).toBe(true);
  });

  it('saves nothing up: after a quiet spell, batches still go evenly spaced, not in a burst', async () => {
    const { g } = governor();
    live(g, 10, 10);
    g.tick(); // held to the floor, 1,000 events/s
    vi.advanceTimersByTime(5_000); // quiet: no tick, no batch
    expect(await settled(g.admit(100))).toBe(true);
    const second = g.admit(100);
    vi.advanceTimersByTime(99);
    expect(await settled(second)).toBe(false);
    vi.advanceTimersByTime(1);
    expect(await settled(second)).toBe(true);
  });

  it('does not count a tick with a few slow requests (at most the slow share) as slow', () => {
    const { g } = governor();
    g.tick();
    live(g, 100, Math.floor(100 * SLOW_SHARE));
    g.tick();
    expect(g.limitPerS).toBe(Infinity);
  });

  it('never holds bulk below the floor, grows back by steps, and is lifted after a second without live requests', () => {
    const { g } = governor();
    for (let i = 0; i < 5; i++) {
      vi.advanceTimersByTime(100);
      live(g, 10, 10);
      g.tick();
    }
    expect(g.limitPerS).toBe(1_000);
    for (let i = 0; i < 3; i++) {
      vi.advanceTimersByTime(100);
      live(g, 10, 0);
      g.tick();
    }
    expect(g.limitPerS).toBe(4_000);
    for (let i = 0; i < 9; i++) {
      vi.advanceTimersByTime(100);
      g.tick();
    }
    expect(g.limitPerS).toBe(13_000);
    vi.advanceTimersByTime(100);
    g.tick();
    expect(g.limitPerS).toBe(Infinity);
  });

  it('lets a batch through after the longest wait even while the bucket is in debt, oldest first', async () => {
    const { g, waits } = governor({ maxWaitMs: 500 });
    live(g, 10, 10);
    g.tick();
    expect(g.limitPerS).toBe(1_000);
    await g.admit(1_000); // a second's worth of debt, capped at the longest wait's half second
    const first = g.admit(100);
    vi.advanceTimersByTime(10);
    const second = g.admit(100);
    vi.advanceTimersByTime(489);
    expect(await settled(first)).toBe(false);
    vi.advanceTimersByTime(1);
    expect(await settled(first)).toBe(true);
    expect(await settled(second)).toBe(false);
    vi.advanceTimersByTime(10);
    expect(await settled(second)).toBe(true);
    expect(waits.slice(-2)).toEqual([0.5, 0.5]);
    // Twenty batches let through by their longest wait leave at most that wait's debt behind:
    // half a second later the next batch goes at once (uncapped, it would owe 20 s).
    const many = Array.from({ length: 20 }, () => g.admit(1_000));
    vi.advanceTimersByTime(500);
    for (const m of many) expect(await settled(m)).toBe(true);
    vi.advanceTimersByTime(500);
    expect(await settled(g.admit(100))).toBe(true);
  });

  it('lets every waiting batch through when it closes (a stopping server stores what it acknowledges)', async () => {
    const { g } = governor();
    live(g, 10, 10);
    g.tick();
    await g.admit(5_000);
    const waiting = [g.admit(100), g.admit(100), g.admit(100)];
    expect(g.waitingBatches).toBe(3);
    g.close();
    for (const w of waiting) expect(await settled(w)).toBe(true);
  });

  it('is off with a target of 0: nothing waits, nothing is observed', async () => {
    const { g, waits } = governor({ targetMs: 0 });
    live(g, 10, 10);
    g.tick();
    expect(g.enabled).toBe(false);
    for (let i = 0; i < 5; i++) expect(await settled(g.admit(1_000))).toBe(true);
    expect(waits).toEqual([]);
  });
});
