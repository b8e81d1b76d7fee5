import { describe, expect, it } from 'vitest';
import { formatDuration, formatProgressLine } from './progress.js';

describe('progress', () => {
  it('shows bar, percent, rate and ETA', () => {
    const line = formatProgressLine({ label: 'import', done: 25e6, total: 100e6, elapsedMs: 5000, unit: 'bytes', note: '1,000 events' }, 8);
    expect(line).toBe('import [##......]  25.0%  5.0 MB/s  1,000 events  ETA 15s');
  });

  it('counts in other units and survives a zero rate', () => {
    expect(formatProgressLine({ label: 'epoch 1', done: 30, total: 120, elapsedMs: 60_000, unit: 'steps' }, 4)).toBe('epoch 1 [#...]  25.0%  0.5 steps/s  ETA 3m00s');
    expect(formatProgressLine({ label: 'x', done: 0, total: 10, elapsedMs: 0, unit: 'steps' }, 4)).toBe('x [....]   0.0%  0.0 steps/s  ETA ?');
  });

  it('formats durations', () => {
    expect(formatDuration(42.4)).toBe('42s');
    expect(formatDuration(125)).toBe('2m05s');
    expect(formatDuration(7260)).toBe('2h01m');
    expect(formatDuration(Infinity)).toBe('?');
  });
});
