import { describe, expect, it } from 'vitest';
import { PassThrough } from 'node:stream';
import { createProgress, formatDuration, formatProgressLine } from './progress.js';

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

  it('off a terminal prints plain lines on a schedule, log lines as they come, and the final line once', async () => {
    const stream = Object.assign(new PassThrough(), { isTTY: false }) as unknown as NodeJS.WriteStream;
    let text = '';
    (stream as unknown as PassThrough).on('data', (chunk: Buffer) => (text += chunk.toString()));
    const progress = createProgress({ label: 'job', total: 10, unit: 'steps', stream, intervalMs: 20 });
    progress.update(5, 'half');
    await new Promise((r) => setTimeout(r, 60));
    progress.log('epoch 1: done');
    progress.update(10, 'all');
    progress.finish();
    const lines = text.split('\n');
    expect(text).not.toMatch(/\x1b/); // no terminal escapes in a log file
    expect(lines).toContain('epoch 1: done');
    expect(lines.some((l) => /^job \[#+\.+\]  50\.0%.*half/.test(l))).toBe(true);
    expect(lines.filter((l) => /100\.0%.*all/.test(l))).toHaveLength(1);
    expect(text.endsWith('\n')).toBe(true);
    expect(text.endsWith('\n\n')).toBe(false);
  });

  it('prints nothing when quiet', () => {
    const stream = Object.assign(new PassThrough(), { isTTY: false }) as unknown as NodeJS.WriteStream;
    let text = '';
    (stream as unknown as PassThrough).on('data', (chunk: Buffer) => (text += chunk.toString()));
    const progress = createProgress({ label: 'job', total: 10, unit: 'steps', stream, quiet: true });
    progress.update(5);
    progress.log('x');
    progress.finish();
    expect(text).toBe('');
  });
});
