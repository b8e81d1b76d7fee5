import { describe, expect, it } from 'vitest';
import { threadCpuMicrosPer, threadCpuPerSecond } from './thread-cpu.js';

describe('CPU by thread between two readings', () => {
  const before = new Map([['event loop', 1.0], ['attnrec-writer', 2.0], ['node', 0.5]]);
  const after = new Map([['event loop', 1.3], ['attnrec-writer', 2.9], ['node', 0.5], ['attnrec-wal', 0.02]]);

  it('per second of wall time: ms, busiest first, idle threads left out', () => {
    expect(Object.entries(threadCpuPerSecond(before, after, 2))).toEqual([['attnrec-writer', 450], ['event loop', 150], ['attnrec-wal', 10]]);
  });

  it('per unit of work: µs to 0.1, busiest first, a thread born between the readings counted from zero', () => {
    // 0.9 s of the writer over 30,000 events: 30 µs an event; the WAL thread 0.02 s: 0.7 µs.
    expect(Object.entries(threadCpuMicrosPer(before, after, 30_000))).toEqual([['attnrec-writer', 30], ['event loop', 10], ['attnrec-wal', 0.7]]);
  });

  it('refuses a count of no work', () => {
    expect(() => threadCpuMicrosPer(before, after, 0)).toThrow(RangeError);
  });
});
