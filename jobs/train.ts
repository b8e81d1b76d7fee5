#!/usr/bin/env -S npx tsx
import { integerFlag, runJob, type FlagSpec, type JobSpec } from '../src/cli/job.js';
import { createProgress, formatDuration, type Progress } from '../src/cli/progress.js';
import { DEFAULT_DATABASE_URL } from '../src/config/database-url.js';
import { migrate } from '../src/data/migrate.js';
import { openStore } from '../src/data/store.js';
import { AppError } from '../src/errors.js';
import { BACKEND_PREFERENCES, type BackendPreference } from '../src/model/backend.js';
import { MODEL_DEFAULTS } from '../src/model/config.js';
import { DEFAULT_VALID_USERS, trainRun } from '../src/train/train-run.js';

const spec = {
  name: 'jobs/train',
  summary: 'train a SASRec model on the histories in the event store and save a new model version',
  usage: 'npm run train -- [options]',
  flags: {
    epochs: { type: 'string', value: 'n', default: '20', description: 'Maximum epochs' },
    patience: { type: 'string', value: 'n', default: '3', description: 'Stop after this many epochs without a better validation NDCG@10' },
    'batch-size': { type: 'string', value: 'n', default: '128', description: 'Sequences per step' },
    lr: { type: 'string', value: 'rate', default: '0.001', description: 'Adam learning rate' },
    loss: { type: 'string', value: 'name', default: 'sampled', choices: ['sampled', 'full'], description: 'Sampled softmax over shared negatives (with logQ correction) or full softmax over the catalogue' },
    negatives: { type: 'string', value: 'n', default: '256', description: 'Shared negatives per step (sampled loss)' },
    'negative-alpha': { type: 'string', value: 'a', default: '0.5', description: 'Negative sampling ∝ popularity^a (0 uniform, 1 unigram)' },
    'max-length': { type: 'string', value: 'n', default: String(MODEL_DEFAULTS.maxLength), description: 'Most recent events per history the model sees' },
    dim: { type: 'string', value: 'n', default: String(MODEL_DEFAULTS.dim), description: 'Embedding and hidden width' },
    heads: { type: 'string', value: 'n', default: String(MODEL_DEFAULTS.heads), description: 'Attention heads (must divide dim)' },
    blocks: { type: 'string', value: 'n', default: String(MODEL_DEFAULTS.blocks), description: 'Attention blocks' },
    dropout: { type: 'string', value: 'p', default: String(MODEL_DEFAULTS.dropout), description: 'Dropout rate' },
    seed: { type: 'string', value: 'n', default: String(MODEL_DEFAULTS.seed), description: 'Seed for initialisation, batch order, dropout and sampling' },
    backend: { type: 'string', value: 'name', default: 'auto', choices: BACKEND_PREFERENCES, description: 'TensorFlow.js backend (auto: tensorflow-gpu, tensorflow, wasm, cpu — the first that starts)' },
    'valid-users': { type: 'string', value: 'n', default: String(DEFAULT_VALID_USERS), description: 'Users in the fixed per-epoch validation sample (0 = all); test metrics always use every user' },
    'sampled-negatives': { type: 'string', value: 'n', default: '100', description: "Negatives of the SASRec paper's sampled test protocol (reported separately)" },
    artifacts: { type: 'string', value: 'dir', default: 'models', description: 'Folder for model versions (each in v<id>/)' },
    'database-url': { type: 'string', value: 'url', description: `Database (default: $DATABASE_URL, else ${DEFAULT_DATABASE_URL})` },
    json: { type: 'boolean', default: false, description: 'Print the result as JSON on stdout' },
    quiet: { type: 'boolean', short: 'q', default: false, description: 'No progress output' },
  },
  details: `
Protocol: leave-one-out (train on all but each user's last two events, validate on the second to last,
test on the last; users with fewer than 4 events only train). Validation after every epoch ranks all
items (history excluded); the best epoch is kept. Test metrics: full ranking (NDCG/HR@1,5,10,20, MRR)
and, labelled as sampled, the SASRec paper's protocol.
Output: models/v<id>/ (model.json + weights.bin, tfjs weights-manifest layout), item embeddings and a
model_versions row with config, seed, data snapshot hash, backend, metrics and training time.`,
} satisfies JobSpec<Record<string, FlagSpec>>;

await runJob(spec, async ({ flags }) => {
  const number = (name: string, raw: string, min: number, max: number): number => {
    const n = Number(raw);
    if (!Number.isFinite(n) || n < min || n > max) throw new AppError('USAGE', `--${name} must be a number from ${min} to ${max}; got '${raw}'`);
    return n;
  };
  const store = openStore(flags['database-url'] ?? process.env.DATABASE_URL);
  let progress: Progress | undefined;
  let epoch = 0;
  try {
    await migrate(store);
    const result = await trainRun(store, {
      model: {
        maxLength: integerFlag('max-length', flags['max-length'], 1, 4096),
        dim: integerFlag('dim', flags.dim, 2, 4096),
        heads: integerFlag('heads', flags.heads, 1, 64),
        blocks: integerFlag('blocks', flags.blocks, 1, 64),
        dropout: number('dropout', flags.dropout, 0, 0.9),
      },
      training: {
        loss: flags.loss as 'sampled' | 'full',
        negatives: integerFlag('negatives', flags.negatives, 1, 100_000),
        negativeAlpha: number('negative-alpha', flags['negative-alpha'], 0, 1),
        learningRate: number('lr', flags.lr, 1e-6, 1),
        batchSize: integerFlag('batch-size', flags['batch-size'], 1, 100_000),
        seed: integerFlag('seed', flags.seed, 0, 2 ** 31 - 1),
      },
      epochs: integerFlag('epochs', flags.epochs, 1, 10_000),
      patience: integerFlag('patience', flags.patience, 1, 10_000),
      backend: flags.backend as BackendPreference,
      sampledNegatives: integerFlag('sampled-negatives', flags['sampled-negatives'], 1, 10_000),
      validUsers: integerFlag('valid-users', flags['valid-users'], 0, 100_000_000),
      artifactsRoot: flags.artifacts,
      onStep: (done, total, loss) => {
        if (done === 0) progress = createProgress({ label: `epoch ${++epoch}`, total, unit: 'steps', quiet: flags.quiet || flags.json });
        else progress?.update(done, `loss ${loss.toFixed(4)}`);
      },
      onEpoch: (e) => {
        progress?.finish();
        if (!flags.quiet && !flags.json) {
          process.stderr.write(`epoch ${e.epoch}: loss ${e.loss.toFixed(4)}, valid NDCG@10 ${e.validNdcg10.toFixed(4)} HR@10 ${e.validHr10.toFixed(4)}${e.best ? ' (best)' : ''}, ${formatDuration(e.seconds)}\n`);
        }
      },
    });
    if (flags.json) process.stdout.write(`${JSON.stringify(result, null, 2)}\n`);
    else {
      const t = result.test;
      process.stdout.write(
        `model version ${result.versionId} (${result.backend}) in ${result.artifactPath}\n` +
          `best epoch ${result.bestEpoch} of ${result.epochs.length}, trained in ${formatDuration(result.trainSeconds)}\n` +
          `test, full ranking:    NDCG@10 ${t.full.ndcg[10]!.toFixed(4)}  HR@10 ${t.full.hr[10]!.toFixed(4)}  MRR ${t.full.mrr.toFixed(4)}  (${t.full.users} users)\n` +
          (t.sampled ? `test, sampled (${flags['sampled-negatives']} negatives): NDCG@10 ${t.sampled.ndcg[10]!.toFixed(4)}  HR@10 ${t.sampled.hr[10]!.toFixed(4)}\n` : ''),
      );
    }
  } finally {
    await store.close();
  }
});
