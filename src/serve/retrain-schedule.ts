import { spawn } from 'node:child_process';
import { setPriority } from 'node:os';
import { join } from 'node:path';
import { Cron } from 'croner';
import { Logger as QueueLogger, makeWorkerUtils, run, type Runner, type WorkerUtils } from 'graphile-worker';
import { ROOT } from '../cli/processes.js';
import { validateCron } from './cron-expression.js';

/** The job's task name, and its queue: jobs of one named queue run one at a time across every replica. */
export const RETRAIN_TASK = 'attnrec_retrain';

export type RetrainOutcome = 'promoted' | 'canary' | 'kept' | 'failed';

export interface RetrainRun {
  readonly outcome: RetrainOutcome;
  /** The job's JSON result (promoted, canary or kept), or the end of its stderr (failed). */
  readonly detail: string;
  readonly seconds: number;
}

export interface RetrainScheduleOptions {
  /** Five-field cron expression (minute hour day-of-month month day-of-week), in the server's time zone. */
  readonly cron: string | undefined;
  /** Extra flags for jobs/retrain.ts (--since 90d, --min-gain 0.01, --artifacts …). */
  readonly args: readonly string[];
  readonly databaseUrl: string;
  readonly log: (message: string, error?: unknown) => void;
  /** When a run starts here. */
  readonly onStart?: () => void;
  /** After every run, on the replica that ran it. */
  readonly onRun: (run: RetrainRun) => void;
  /** The command that runs one retrain (tests replace it); default: this checkout's jobs/retrain.ts. */
  readonly command?: readonly string[];
}

/**
 * Scheduled retraining (npm run retrain) for the server: on SQLite, a cron in
 * this process; on PostgreSQL, graphile-worker's crontab and job queue, so that
 * of every replica with the same schedule exactly one runs each tick, and one
 * run at a time (bench/job-queue-choice.ts measured it against pg-boss). A run
 * is a child process at the lowest CPU priority: live requests come first,
 * and a crash in training cannot take the server down. The job itself decides
 * whether the new version takes over; servers find an activation by polling.
 * `runNow` queues a run outside the schedule (POST /v1/models/retrain).
 */
export class RetrainSchedule {
  private running: Promise<RetrainRun> | undefined;

  private constructor(
    private readonly options: RetrainScheduleOptions,
    private readonly cron: Cron | undefined,
    private readonly queue: { readonly runner: Runner; readonly utils: WorkerUtils } | undefined,
  ) {}

  /** Validates the expression (a USAGE error names it) and starts the schedule; without one, only runNow works. */
  static async start(options: RetrainScheduleOptions, provider: 'sqlite' | 'postgresql'): Promise<RetrainSchedule> {
    if (options.cron !== undefined) validateCron(options.cron);
    if (provider === 'sqlite') {
      let schedule: RetrainSchedule | undefined;
      const cron = options.cron === undefined ? undefined : new Cron(options.cron, { protect: true, catch: true }, async () => void (await schedule?.runHere()));
      schedule = new RetrainSchedule(options, cron, undefined);
      return schedule;
    }
    let schedule: RetrainSchedule | undefined;
    const logger = new QueueLogger(() => (level, message) => {
      if (level === 'error' || level === 'warning') options.log(`job queue: ${message}`);
    });
    const runner = await run({
      connectionString: options.databaseUrl,
      concurrency: 1,
      noHandleSignals: true,
      pollInterval: 2_000,
      logger,
      taskList: {
        [RETRAIN_TASK]: async () => {
          const result = await schedule!.runHere();
          // A failed run is reported by the server; the queue must not retry a long training run on its own.
          if (result.outcome === 'failed') options.log('retrain failed; the job queue does not retry it (the next tick or request runs a new one)');
        },
      },
      // One attempt per tick, in a queue of its own (one run at a time across replicas).
      ...(options.cron !== undefined && { crontab: `${options.cron} ${RETRAIN_TASK} ?max=1&queue=${RETRAIN_TASK}` }),
    });
    const utils = await makeWorkerUtils({ connectionString: options.databaseUrl, logger });
    schedule = new RetrainSchedule(options, undefined, { runner, utils });
    return schedule;
  }

  /** The next scheduled time (SQLite's in-process cron only; PostgreSQL's queue keeps its own). */
  get next(): Date | null {
    return this.cron?.nextRun() ?? null;
  }

  get busy(): boolean {
    return this.running !== undefined;
  }

  /** Queues a run now: on PostgreSQL for whichever replica takes it, on SQLite here (unless one is running). */
  async runNow(): Promise<'queued' | 'running'> {
    if (this.queue) {
      await this.queue.utils.addJob(RETRAIN_TASK, {}, { queueName: RETRAIN_TASK, maxAttempts: 1 });
      return 'queued';
    }
    if (this.running) return 'running';
    void this.runHere();
    return 'queued';
  }

  /** Runs the retrain job in a child process and reports it; a run already under way is joined, not repeated. */
  runHere(): Promise<RetrainRun> {
    this.running ??= this.spawnRun().finally(() => (this.running = undefined));
    return this.running;
  }

  private async spawnRun(): Promise<RetrainRun> {
    const { log, onRun } = this.options;
    const started = performance.now();
    const [command, ...prefix] = this.options.command ?? [process.execPath, '--import', 'tsx', join(ROOT, 'jobs', 'retrain.ts')];
    log('retrain: started');
    this.options.onStart?.();
    const result = await new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve) => {
      const child = spawn(command!, [...prefix, '--json', '--quiet', '--database-url', this.options.databaseUrl, ...this.options.args], { cwd: process.cwd(), stdio: ['ignore', 'pipe', 'pipe'] });
      try {
        if (child.pid !== undefined) setPriority(child.pid, 19);
      } catch {
        // Not permitted here: it runs at normal priority.
      }
      let stdout = '';
      let stderr = '';
      child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
      child.stderr.on('data', (chunk: Buffer) => (stderr = (stderr + chunk.toString()).slice(-4_000)));
      child.once('error', (error) => resolve({ code: null, stdout, stderr: `${stderr}${error.message}` }));
      child.once('close', (code) => resolve({ code, stdout, stderr }));
    });
    const seconds = (performance.now() - started) / 1000;
    let run: RetrainRun;
    const decision = result.code === 0 ? parseDecision(result.stdout) : undefined;
    if (decision) {
      run = { outcome: decision.decision, detail: result.stdout, seconds };
      log(`retrain: ${decision.reason} (${seconds.toFixed(0)} s)`);
    } else {
      run = { outcome: 'failed', detail: result.stderr.trim() || `exit code ${result.code}`, seconds };
      log(`retrain failed after ${seconds.toFixed(0)} s (exit code ${result.code}); the active version keeps serving: ${run.detail.split('\n').slice(-3).join(' | ')}`);
    }
    onRun(run);
    return run;
  }

  /** Stops the schedule; a run in progress is left to finish on its own (its process outlives a restart). */
  async close(): Promise<void> {
    this.cron?.stop();
    if (this.queue) {
      await this.queue.runner.stop().catch(() => {});
      await Promise.resolve(this.queue.utils.release()).catch(() => {});
    }
  }
}

function parseDecision(stdout: string): { decision: Exclude<RetrainOutcome, 'failed'>; reason: string } | undefined {
  try {
    const parsed = JSON.parse(stdout) as { decision?: unknown; reason?: unknown };
    if ((parsed.decision === 'promoted' || parsed.decision === 'canary' || parsed.decision === 'kept') && typeof parsed.reason === 'string') return { decision: parsed.decision, reason: parsed.reason };
  } catch {
    // Not the job's JSON: a failure.
  }
  return undefined;
}
