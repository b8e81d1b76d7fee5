import { mkdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { importEvents } from '../src/data/import/import-events.js';
import { DEFAULT_SASREC } from '../src/data/import/sources.js';
import { migrate } from '../src/data/migrate.js';
import { openStore } from '../src/data/store.js';
import { attentionKernel } from '../src/model/attention-kernel.js';
import { MODEL_DEFAULTS } from '../src/model/config.js';
import { DEFAULT_PATIENCE, trainRun } from '../src/train/train-run.js';
import { DEFAULT_LR_FINAL, DEFAULT_TRAINING } from '../src/train/trainer.js';
import { runLongStepBench } from './long-step-bench.js';

/**
 * Training on the shipped amazon-games sample at the reference shape
 * (batch 128, max length 50, dim 64, 2 blocks), on whatever backend starts
 * here, into a scratch SQLite store. Reports speed, memory and test metrics
 * beside the targets and the baselines; the reference is a PyTorch SASRec on
 * this CPU. Then times training steps on generated 128 × 200 histories.
 */
export interface TrainBenchOptions {
  readonly epochs: number;
  /** Timed 128 × 200 steps on generated long histories (0 = skip). */
  readonly longSteps: number;
  readonly scratch: string;
  readonly log: (line: string) => void;
}

export async function runTrainBench(options: TrainBenchOptions): Promise<Record<string, unknown>> {
  mkdirSync(options.scratch, { recursive: true });
  const file = join(options.scratch, 'train-bench.db');
  for (const suffix of ['', '-wal', '-shm']) rmSync(file + suffix, { force: true });
  const store = openStore(`file:${file}`);
  try {
    await migrate(store);
    const sample = join(import.meta.dirname, '..', 'samples', 'amazon-games.txt');
    await importEvents(store, { events: { path: sample, format: 'sasrec', timeUnit: 'auto', sasrec: DEFAULT_SASREC }, skipBad: false, eventTypes: 'register' });
    // As the training job: the learning rate decays linearly to DEFAULT_LR_FINAL over the epochs.
    const training = { ...DEFAULT_TRAINING, learningRateDecay: { finalFactor: DEFAULT_LR_FINAL, epochs: options.epochs } };
    const model = { maxLength: 50, dim: 64, heads: 2, blocks: 2, dropout: MODEL_DEFAULTS.dropout };
    const result = await trainRun(store, {
      model,
      training,
      epochs: options.epochs,
      patience: DEFAULT_PATIENCE, // as the job: stop after 3 epochs without a better validation NDCG@10
      backend: 'auto',
      artifactsRoot: join(options.scratch, 'models'),
      sampledNegatives: 100,
      onStart: ({ backend }) => options.log(`training on ${backend}`),
      onEpoch: (e) => options.log(`epoch ${e.epoch}: ${e.seconds.toFixed(1)} s, loss ${e.loss.toFixed(4)}, valid NDCG@10 ${e.validNdcg10.toFixed(4)}`),
    });
    const peakRssMb = Math.round(process.resourceUsage().maxRSS / 1024); // before the long-step run, which is a separate measurement
    const long = options.longSteps > 0 ? await runLongStepBench({ steps: options.longSteps, log: options.log }) : undefined;
    const epochSeconds = result.epochs.reduce((s, e) => s + e.seconds, 0) / result.epochs.length;
    const steps = result.epochs.reduce((s, e) => s + e.steps, 0);
    const t = result.test;
    return {
      dataset: 'amazon-games',
      backend: result.backend,
      epochs: result.epochs.length,
      best_epoch: result.bestEpoch,
      train_seconds: round(result.trainSeconds),
      epoch_seconds: round(epochSeconds),
      steps_per_s: round(steps / result.epochs.reduce((s, e) => s + e.seconds, 0)),
      peak_rss_mb: peakRssMb,
      attention: attentionKernel() ? 'simd-wasm-kernel' : 'tfjs-ops',
      test: {
        ndcg10_full: round(t.full.ndcg[10]!, 4),
        hr10_full: round(t.full.hr[10]!, 4),
        mrr_full: round(t.full.mrr, 4),
        ndcg10_sampled100: round(t.sampled!.ndcg[10]!, 4),
        hr10_sampled100: round(t.sampled!.hr[10]!, 4),
        users: t.full.users,
      },
      baselines: Object.fromEntries(
        Object.entries(result.baselines).map(([name, e]) => [
          name,
          { ndcg10_full: round(e.full.ndcg[10]!, 4), hr10_full: round(e.full.hr[10]!, 4), ndcg10_sampled100: round(e.sampled!.ndcg[10]!, 4), hr10_sampled100: round(e.sampled!.hr[10]!, 4) },
        ]),
      ),
      long_history_steps: long ?? null,
      config: { ...training, ...model, validUsers: 10_000 },
      per_epoch: result.epochs.map((e) => ({ epoch: e.epoch, seconds: round(e.seconds), loss: round(e.loss, 4), valid_ndcg10: round(e.validNdcg10, 4), valid_hr10: round(e.validHr10, 4) })),
      targets: { ndcg10_sampled100: 0.55, hr10_sampled100: 0.76, ndcg10_full: 0.05, train_seconds: 900, epoch_seconds_reference_pytorch: 47.7, peak_rss_mb: 2048, long_step_seconds_reference_pytorch: 2.2 },
      notes: 'epoch_seconds excludes the per-epoch validation; train_seconds includes it. Sampled metrics rank the test item among 100 random unseen items (SASRec paper protocol) and overstate accuracy.',
    };
  } finally {
    await store.close();
  }
}

function round(value: number, digits = 2): number {
  return Math.round(value * 10 ** digits) / 10 ** digits;
}
