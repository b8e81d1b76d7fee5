import cliProgress from 'cli-progress';

const { MultiBar, SingleBar } = cliProgress;

/**
 * Progress for long jobs on stderr: a redrawn bar on a terminal, a plain line
 * every few seconds otherwise (CI logs, pipes). Shows rate and ETA.
 */

export interface ProgressLine {
  readonly label: string;
  readonly done: number;
  readonly total: number;
  readonly elapsedMs: number;
  /** What `done` counts, for the rate: bytes are shown as MB. */
  readonly unit: 'bytes' | string;
  /** Extra text after the rate, e.g. "287,107 events". */
  readonly note?: string;
}

const integer = new Intl.NumberFormat('en-US', { maximumFractionDigits: 0 });

export function formatCount(n: number): string {
  return integer.format(n);
}

export function formatDuration(seconds: number): string {
  if (!Number.isFinite(seconds) || seconds < 0) return '?';
  if (seconds < 60) return `${Math.round(seconds)}s`;
  const m = Math.floor(seconds / 60);
  if (m < 60) return `${m}m${String(Math.round(seconds % 60)).padStart(2, '0')}s`;
  return `${Math.floor(m / 60)}h${String(m % 60).padStart(2, '0')}m`;
}

export function formatProgressLine(p: ProgressLine, barWidth = 24): string {
  const fraction = p.total > 0 ? Math.min(1, p.done / p.total) : 0;
  const filled = Math.round(fraction * barWidth);
  const bar = `[${'#'.repeat(filled)}${'.'.repeat(barWidth - filled)}]`;
  const seconds = p.elapsedMs / 1000;
  const rate = seconds > 0 ? p.done / seconds : 0;
  const rateText = p.unit === 'bytes' ? `${(rate / 1e6).toFixed(1)} MB/s` : `${rate < 10 ? rate.toFixed(1) : formatCount(rate)} ${p.unit}/s`;
  const eta = rate > 0 && p.total > 0 ? formatDuration((p.total - p.done) / rate) : '?';
  const percent = `${(fraction * 100).toFixed(1).padStart(5)}%`;
  return `${p.label} ${bar} ${percent}  ${rateText}${p.note ? `  ${p.note}` : ''}  ETA ${eta}`;
}

export interface Progress {
  update(done: number, note?: string): void;
  /** A line of its own above the bar (on a terminal the bar is redrawn below it). */
  log(line: string): void;
  finish(): void;
}

/**
 * A progress bar drawn by cli-progress: on a terminal it redraws in place (10 times a second, cursor
 * hidden and restored, also on Ctrl-C, log lines kept above it); elsewhere (CI logs, pipes) it prints
 * the line every `intervalMs`. The line itself is formatProgressLine's (rate over the whole run, so the ETA does not
 * jump with one slow step).
 */
export function createProgress(options: {
  label: string;
  total: number;
  unit: string;
  stream?: NodeJS.WriteStream;
  quiet?: boolean;
  /** Plain-line interval when not on a terminal. */
  intervalMs?: number;
}): Progress {
  if (options.quiet) return { update: () => {}, log: () => {}, finish: () => {} };
  const stream = options.stream ?? process.stderr;
  const tty = stream.isTTY === true;
  const started = performance.now();
  let note: string | undefined;
  const format = (_options: unknown, params: { value: number }): string =>
    formatProgressLine({ label: options.label, done: params.value, total: options.total, elapsedMs: performance.now() - started, unit: options.unit, ...(note !== undefined && { note }) });
  const common = { stream, hideCursor: true, gracefulExit: true, linewrap: false, format };
  if (tty) {
    // A multi-bar (of one) keeps log lines above the bar and redraws it below them.
    const bars = new MultiBar({ ...common, fps: 10 });
    const bar = bars.create(options.total, 0);
    return {
      update(done, latestNote) {
        note = latestNote;
        bar.update(done);
      },
      log: (line) => bars.log(`${line}\n`),
      finish: () => bars.stop(),
    };
  }
  // Not a terminal: one plain line every intervalMs, and log lines as they come.
  // clearOnComplete: off a terminal it only skips the blank line stop() would add after the last line.
  const bar = new SingleBar({ ...common, noTTYOutput: true, notTTYSchedule: options.intervalMs ?? 5_000, clearOnComplete: true });
  bar.start(options.total, 0);
  return {
    update(done, latestNote) {
      note = latestNote;
      bar.update(done);
    },
    log: (line) => void stream.write(`${line}\n`),
    finish: () => bar.stop(),
  };
}
