import { describe, expect, it } from 'vitest';
import { MONITOR_TAIL_SHARE, monitorTailNote } from './machine.js';

describe("the memory monitor's share of a run", () => {
  it('marks a run whose monitor held a core at least 2 % of the time', () => {
    // (c) at 1,000 req/s, 2026-12-06 17:44: 543 ms in 15 s, p99 20.9 ms.
    expect(monitorTailNote(543, 15)).toContain('3.6 % of this run');
    expect(monitorTailNote(543, 15)).toContain('36 ms a second');
    expect(monitorTailNote(MONITOR_TAIL_SHARE * 15_000, 15)).toBeDefined();
  });

  it('leaves a quiet run, a machine with no monitor and a run of no time alone', () => {
    // 2026-12-05 18:50: 69 ms in 15 s, p99 2.7 ms; 2026-12-06 09:54: 118 ms.
    expect(monitorTailNote(69, 15)).toBeUndefined();
    expect(monitorTailNote(118, 15)).toBeUndefined();
    expect(monitorTailNote(undefined, 15)).toBeUndefined();
    expect(monitorTailNote(500, 0)).toBeUndefined();
  });
});
