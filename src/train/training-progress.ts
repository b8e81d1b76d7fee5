import { createProgress, formatDuration, type Progress } from '../cli/progress.js';
import type { EpochSummary, TrainStart } from './train-run.js';

/**
 * The training jobs' progress: one bar over every member's steps with an
 * ETA, a line per epoch, and `say` for anything else the job reports. Silent
 * with `quiet` (and --json, which the caller folds into quiet).
 */
export class TrainingProgress {
  private bar: Progress | undefined;
  // Steps done per member across the whole run, for one bar with an ETA.
  private tracker: { members: number; epochs: number; done: number[]; steps: number; epochOf: number[] } | undefined;

  constructor(private readonly quiet: boolean) {}

  say(line: string): void {
    if (this.quiet) return;
    if (this.bar) this.bar.log(line);
    else process.stderr.write(`${line}\n`);
  }

  /** The run's start: announces the version and readies the bar (a resumed run is announced by the caller). */
  readonly onStart = (start: TrainStart, announce = true): void => {
    const { versionId, backend, members, threads, resumedFromEpochs } = start;
    const shape = members > 1 ? `${members} members, ${threads} at once` : 'one model';
    if (announce) this.say(`training model version ${versionId} (${shape}) on the ${backend} backend`);
    this.tracker = { members, epochs: start.epochs, done: resumedFromEpochs.map(() => 0), steps: 0, epochOf: resumedFromEpochs.map((e) => e + 1) };
  };

  readonly onStep = (member: number, epoch: number, done: number, total: number, loss: number): void => {
    const tracker = this.tracker;
    if (!tracker) return;
    if (tracker.steps === 0) {
      tracker.steps = total;
      this.bar = createProgress({ label: 'training', total: tracker.members * tracker.epochs * total, unit: 'steps', quiet: this.quiet });
    }
    tracker.done[member] = (epoch - 1) * total + done;
    tracker.epochOf[member] = epoch;
    const where = tracker.members > 1 ? tracker.epochOf.map((e, k) => `m${k + 1} epoch ${e}/${tracker.epochs}`).join(', ') : `epoch ${epoch}/${tracker.epochs}`;
    this.bar?.update(
      tracker.done.reduce((a, b) => a + b, 0),
      `${where}${Number.isNaN(loss) ? '' : `, loss ${loss.toFixed(4)}`}`,
    );
  };

  readonly onEpoch = (e: EpochSummary): void => {
    this.say(`${this.tracker && this.tracker.members > 1 ? `member ${e.member + 1} ` : ''}epoch ${e.epoch}: loss ${e.loss.toFixed(4)}, valid NDCG@10 ${e.validNdcg10.toFixed(4)} HR@10 ${e.validHr10.toFixed(4)}${e.best ? ' (best)' : ''}, ${formatDuration(e.seconds)}`);
  };

  /**
   * Storing every user's representation for the API's user cache (after the
   * training bar: ~20 s for amazon-games' 31,000 histories on 2 cores), on a
   * bar of its own with an ETA.
   */
  readonly onRepresentations = (done: number, total: number): void => {
    if (!this.representing) {
      this.finish();
      this.representing = createProgress({ label: 'user representations', total, unit: 'histories', quiet: this.quiet });
    }
    this.representing.update(done);
    if (done >= total) {
      this.representing.finish();
      this.representing = undefined;
    }
  };

  private representing: Progress | undefined;

  /** Ends the bar (the lines said after it go to stderr as they are). */
  finish(): void {
    this.bar?.finish();
    this.bar = undefined;
    this.representing?.finish();
    this.representing = undefined;
  }
}
