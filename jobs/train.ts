#!/usr/bin/env -S npx tsx
import { integerFlag, runJob, type FlagSpec, type JobSpec } from '../src/cli/job.js';
import { formatCount, formatDuration } from '../src/cli/progress.js';
import { DEFAULT_DATABASE_URL } from '../src/config/database-url.js';
import { migrate } from '../src/data/migrate.js';
import { openStore } from '../src/data/store.js';
import { AppError } from '../src/errors.js';
import { parseSince } from '../src/data/since.js';
import type { Evaluation } from '../src/evaluate/evaluate.js';
import { metricsTable } from '../src/evaluate/metrics-table.js';
import { BACKEND_PREFERENCES, type BackendPreference } from '../src/model/backend.js';
import { MODEL_DEFAULTS } from '../src/model/config.js';
import { DEFAULT_EPOCHS, DEFAULT_MEMBERS, DEFAULT_PATIENCE, DEFAULT_VALID_USERS, trainRun, type CooccurrenceSummary, type NextPurchaseSummary, type ValidationSummary } from '../src/train/train-run.js';
import type { RepeatFit } from '../src/train/fit-repeat-term.js';
import { parseTargetWeights } from '../src/train/target-weights.js';
import { EVAL_TYPES, type EvalType } from '../src/data/leave-one-out-split.js';
import { DEFAULT_EXCLUDE, EXCLUDE_POLICIES, type ExcludePolicy } from '../src/data/exclusion.js';
import { TrainingProgress } from '../src/train/training-progress.js';
import { DEFAULT_GBCE_T, DEFAULT_LR_FINAL, DEFAULT_TRAINING, ITEM_INITS, LOSSES, type ItemInit, type LossName } from '../src/train/trainer.js';

const spec = {
  name: 'jobs/train',
  summary: 'train a SASRec model on the histories in the event store and save a new model version',
  usage: 'npm run train -- [options]',
  flags: {
    epochs: { type: 'string', value: 'n', default: String(DEFAULT_EPOCHS), description: 'Maximum epochs' },
    patience: { type: 'string', value: 'n', default: String(DEFAULT_PATIENCE), description: 'Stop a member after this many epochs without a better validation NDCG@10' },
    members: { type: 'string', value: 'n', default: String(DEFAULT_MEMBERS), description: 'Ensemble members, trained from seeds seed, seed+1, …; predictions average their logits (1 = a single model)' },
    threads: { type: 'string', value: 'n', description: 'Members trained at once, each in a worker thread (default: one per core on the wasm/cpu backends, 1 on GPU)' },
    'batch-size': { type: 'string', value: 'n', default: String(DEFAULT_TRAINING.batchSize), description: 'Sequences per step' },
    lr: { type: 'string', value: 'rate', default: String(DEFAULT_TRAINING.learningRate), description: 'Adam learning rate' },
    'lr-final': { type: 'string', value: 'factor', default: String(DEFAULT_LR_FINAL), description: 'Decay the learning rate linearly to lr × factor by the last epoch (1 = constant)' },
    loss: {
      type: 'string',
      value: 'name',
      default: DEFAULT_TRAINING.loss,
      choices: LOSSES,
      description: 'sampled: softmax over shared negatives with logQ correction; full: softmax over the whole catalogue; gbce: gSASRec generalised BCE; bce: original SASRec BCE, one negative',
    },
    negatives: { type: 'string', value: 'n', default: String(DEFAULT_TRAINING.negatives), description: 'Negatives: shared by each step (sampled loss) or per position (gbce loss)' },
    'negative-alpha': { type: 'string', value: 'a', default: String(DEFAULT_TRAINING.negativeAlpha), description: 'Sampled loss: negatives drawn ∝ popularity^a (0 uniform, 1 unigram)' },
    'gbce-t': { type: 'string', value: 't', default: String(DEFAULT_GBCE_T), description: 'gbce loss: calibration t in [0, 1]' },
    'item-bias': { type: 'boolean', default: MODEL_DEFAULTS.itemBias, description: 'Learn a per-item bias on the output logits (a popularity prior)' },
    'event-types': { type: 'boolean', default: true, description: 'Add event-type embeddings (view/cart/purchase) to the input; --no-event-types to leave them out' },
    'max-length': { type: 'string', value: 'n', default: String(MODEL_DEFAULTS.maxLength), description: 'Most recent events per history the model sees' },
    dim: { type: 'string', value: 'n', default: String(MODEL_DEFAULTS.dim), description: 'Embedding and hidden width' },
    'ffn-dim': { type: 'string', value: 'n', description: 'Hidden width of the feed-forward layers (default: --dim)' },
    heads: { type: 'string', value: 'n', default: String(MODEL_DEFAULTS.heads), description: 'Attention heads (must divide dim)' },
    blocks: { type: 'string', value: 'n', default: String(MODEL_DEFAULTS.blocks), description: 'Attention blocks' },
    dropout: { type: 'string', value: 'p', default: String(MODEL_DEFAULTS.dropout), description: 'Dropout rate' },
    'item-replacement': { type: 'string', value: 'p', default: String(DEFAULT_TRAINING.itemReplacement), description: 'Replace each input item by a random one with probability p per step (stochastic shared embeddings; 0 = off)' },
    'target-window': { type: 'string', value: 'k', default: String(DEFAULT_TRAINING.targetWindow?.size ?? 1), description: 'Sampled loss only (the others ignore it): each position predicts its next k events (1 = the next one only), each in a softmax of its own against the negatives' },
    'target-decay': { type: 'string', value: 'g', default: String(DEFAULT_TRAINING.targetWindow?.decay ?? 0.3), description: 'With --target-window: the j-th event after the next one weighs g^j' },
    'target-weights': { type: 'string', value: 'type=w,…', description: 'Weigh each position\'s loss by the event type of its target, e.g. view=1,cart=2,purchase=4 (types not named weigh 1; weights other than 0 and 1 need the sampled loss)' },
    'target-types': { type: 'string', value: 'types', description: 'Train only the positions followed by these event types, e.g. purchase or cart,purchase (the others still shape the histories)' },
    'eval-type': { type: 'string', value: 'what', default: 'event', choices: EVAL_TYPES, description: "event: validate and test on each user's next event; purchase: validate on the next purchase (early stopping, co-occurrence fit) and report it beside the next-event metrics" },
    exclude: { type: 'string', value: 'policy', default: DEFAULT_EXCLUDE, choices: EXCLUDE_POLICIES, description: "Which of a user's history items every evaluation leaves out of the ranking, as the API's exclude does (purchased: bought ones; seen: all; none); a held-out item it leaves out counts as a miss" },
    cooccurrence: { type: 'boolean', default: DEFAULT_TRAINING.cooccurrenceTerm ?? false, description: "Blend an item-to-item co-occurrence term into the version's scores, weighted by a fit on validation (kept only if it helps); --no-cooccurrence for the network alone" },
    'item-init': { type: 'string', value: 'how', default: DEFAULT_TRAINING.itemInit ?? 'random', choices: ITEM_INITS, description: 'Item table start: cooccurrence (spectral embedding of the items bought together in training) or random' },
    'item-init-spread': { type: 'string', value: 's', default: String(DEFAULT_TRAINING.itemInitSpread ?? 1), description: 'With --item-init cooccurrence: the table entries\' spread in units of the random start\'s 1/√dim' },
    seed: { type: 'string', value: 'n', default: String(MODEL_DEFAULTS.seed), description: 'Seed for initialisation, batch order, dropout and sampling' },
    backend: { type: 'string', value: 'name', default: 'auto', choices: BACKEND_PREFERENCES, description: 'TensorFlow.js backend (auto: tensorflow-gpu, tensorflow, wasm, cpu — the first that starts)' },
    'final-validation': { type: 'boolean', default: true, description: 'Evaluate the finished version on held-out validation users (the numbers to choose settings and versions on); --no-final-validation skips it for a throwaway preview' },
    'valid-users': { type: 'string', value: 'n', default: String(DEFAULT_VALID_USERS), description: 'Users in the fixed per-epoch validation sample (0 = all); test metrics always use every user' },
    'sampled-negatives': { type: 'string', value: 'n', default: '100', description: "Negatives of the SASRec paper's sampled test protocol (reported separately)" },
    resume: { type: 'boolean', default: false, description: 'Continue the newest unfinished version (or --version) from its last checkpoint; its saved settings apply' },
    version: { type: 'string', value: 'id', description: 'With --resume: the version to continue' },
    since: { type: 'string', value: 'when', description: 'Train on events at or after this instant: ISO 8601 (2024-01-01) or a span back from now (90d, 12h)' },
    'max-events-per-user': { type: 'string', value: 'n', description: "Keep only each user's most recent n events" },
    'store-representations': { type: 'boolean', default: true, description: "Store every user's representation beside the version (~20 s for 31,000 users), so a server that starts with or activates it fills its user cache by reading instead of computing; --no-store-representations skips it (the server then computes them in the background)" },
    activate: { type: 'string', value: 'when', default: 'auto', choices: ['auto', 'always', 'never'], description: 'Make the new version the one the API serves (auto: when none is active yet)' },
    artifacts: { type: 'string', value: 'dir', default: 'models', description: 'Folder for model versions (each in v<id>/)' },
    'database-url': { type: 'string', value: 'url', description: `Database (default: $DATABASE_URL, else ${DEFAULT_DATABASE_URL})` },
    json: { type: 'boolean', default: false, description: 'Print the result as JSON on stdout' },
    quiet: { type: 'boolean', short: 'q', default: false, description: 'No progress output' },
  },
  details: `
Protocol: leave-one-out (train on all but each user's last two events, validate on the second to last,
test on the last; users with fewer than 4 events only train). Validation after every epoch ranks all
items but those --exclude leaves out of the history (as the API's exclude; a held-out item it leaves
out counts as a miss); the best epoch is kept. Every table also splits the held-out items into novel
(not in the history) and repeat ones. Test metrics: full ranking (NDCG/HR@1,5,10,20, MRR)
and, labelled as sampled, the SASRec paper's protocol, beside the popularity, most-recent-item,
item-knn (co-occurrence scores alone) and history-frequency ("buy it again") baselines on the same split.
Next purchase (--eval-type purchase): each user with two purchases and an event before them has the
last purchase as the test target (history: every event before it) and the one before as the validation
target; training stops before both and before the next-event targets. Members validate on it, and it is
reported beside the next-event metrics and the baselines (docs/merchandising.md#purchase-aware-training).
Output: models/v<id>/ (model.json + weights.bin, tfjs weights-manifest layout; report.html with the
training curves and metrics), item embeddings and a model_versions row with config, seed, data
snapshot hash, backend, metrics and training time.
Interruptions: models/v<id>/checkpoint.bin is replaced after every epoch; Ctrl-C or a crash loses at
most the epoch in progress, and --resume continues from it (bit-identical to an uninterrupted run).`,
} satisfies JobSpec<Record<string, FlagSpec>>;

await runJob(spec, async ({ flags }) => {
  const number = (name: string, raw: string, min: number, max: number): number => {
    const n = Number(raw);
    if (!Number.isFinite(n) || n < min || n > max) throw new AppError('USAGE', `--${name} must be a number from ${min} to ${max}; got '${raw}'`);
    return n;
  };
  if (flags.version !== undefined && !flags.resume) throw new AppError('USAGE', '--version only goes with --resume (see --help)');
  const store = openStore(flags['database-url'] ?? process.env.DATABASE_URL);
  const progress = new TrainingProgress(flags.quiet || flags.json);
  try {
    await migrate(store);
    const eventTypes = new Map((await store.prisma.eventType.findMany()).map((t) => [t.name, t.id]));
    const targetWeights = parseTargetWeights(flags['target-weights'], flags['target-types'], eventTypes);
    const result = await trainRun(store, {
      model: {
        maxLength: integerFlag('max-length', flags['max-length'], 1, 4096),
        dim: integerFlag('dim', flags.dim, 2, 4096),
        heads: integerFlag('heads', flags.heads, 1, 64),
        ...(flags['ffn-dim'] !== undefined && { ffnDim: integerFlag('ffn-dim', flags['ffn-dim'], 1, 65_536) }),
        blocks: integerFlag('blocks', flags.blocks, 1, 64),
        dropout: number('dropout', flags.dropout, 0, 0.9),
        eventTypes: flags['event-types'],
        itemBias: flags['item-bias'],
      },
      training: {
        loss: flags.loss as LossName,
        negatives: integerFlag('negatives', flags.negatives, 1, 100_000),
        negativeAlpha: number('negative-alpha', flags['negative-alpha'], 0, 1),
        gbceT: number('gbce-t', flags['gbce-t'], 0, 1),
        learningRate: number('lr', flags.lr, 1e-6, 1),
        ...(Number(flags['lr-final']) !== 1 && { learningRateDecay: { finalFactor: number('lr-final', flags['lr-final'], 0, 1), epochs: integerFlag('epochs', flags.epochs, 1, 10_000) } }),
        batchSize: integerFlag('batch-size', flags['batch-size'], 1, 100_000),
        itemReplacement: number('item-replacement', flags['item-replacement'], 0, 0.9),
        itemInit: flags['item-init'] as ItemInit,
        itemInitSpread: number('item-init-spread', flags['item-init-spread'], 0.01, 100),
        cooccurrenceTerm: flags.cooccurrence,
        ...(flags.loss === 'sampled' && Number(flags['target-window']) !== 1 && { targetWindow: { size: integerFlag('target-window', flags['target-window'], 1, 50), decay: number('target-decay', flags['target-decay'], 0, 1) } }),
        ...(targetWeights && { targetWeights }),
        seed: integerFlag('seed', flags.seed, 0, 2 ** 31 - 1),
      },
      evalType: flags['eval-type'] as EvalType,
      exclude: flags.exclude as ExcludePolicy,
      epochs: integerFlag('epochs', flags.epochs, 1, 10_000),
      members: integerFlag('members', flags.members, 1, 64),
      ...(flags.threads !== undefined && { threads: integerFlag('threads', flags.threads, 1, 256) }),
      patience: integerFlag('patience', flags.patience, 1, 10_000),
      backend: flags.backend as BackendPreference,
      sampledNegatives: integerFlag('sampled-negatives', flags['sampled-negatives'], 1, 10_000),
      validUsers: integerFlag('valid-users', flags['valid-users'], 0, 100_000_000),
      finalValidation: flags['final-validation'],
      artifactsRoot: flags.artifacts,
      activate: flags.activate as 'auto' | 'always' | 'never',
      storeRepresentations: flags['store-representations'],
      window: {
        ...(flags.since !== undefined && { since: parseSince(flags.since).toISOString() }),
        ...(flags['max-events-per-user'] !== undefined && { maxEventsPerUser: integerFlag('max-events-per-user', flags['max-events-per-user'], 1, 1_000_000_000) }),
      },
      ...(flags.resume && { resume: flags.version === undefined ? ('latest' as const) : integerFlag('version', flags.version, 1, 2 ** 31 - 1) }),
      onStart: (start) => {
        const resumed = start.resumedFromEpochs.some((e) => e > 0);
        // A resume is announced even with --json (on stderr): what was continued matters.
        if (resumed && !flags.quiet) {
          const shape = start.members > 1 ? `${start.members} members, ${start.threads} at once` : 'one model';
          process.stderr.write(`resuming model version ${start.versionId} (${shape}) after epochs ${start.resumedFromEpochs.join(', ')} on the ${start.backend} backend (settings from its checkpoints)\n`);
        }
        progress.onStart(start, !resumed);
      },
      onStep: progress.onStep,
      onEpoch: progress.onEpoch,
      onRepresentations: progress.onRepresentations,
    });
    progress.finish();
    if (flags.json) process.stdout.write(`${JSON.stringify(result, null, 2)}\n`);
    else {
      process.stdout.write(
        `model version ${result.versionId} (${result.backend}) in ${result.artifactPath}${result.activated ? ' — now active' : ''}\n` +
          `report: ${result.reportPath}\n` +
          (result.representations ? `representations of ${result.representations.users} distinct user histories stored for the API's user cache in ${formatDuration(result.representations.seconds)}\n` : '') +
          (result.members.length > 1
            ? `${result.members.length} members (best epochs ${result.members.map((m) => m.bestEpoch).join(', ')}), trained in ${formatDuration(result.trainSeconds)}\n\n`
            : `best epoch ${result.members[0]!.bestEpoch} of ${result.members[0]!.epochs.length}, trained in ${formatDuration(result.trainSeconds)}\n\n`) +
          (result.cooccurrence ? `${describeCooccurrence(result.cooccurrence)}\n` : '') +
          (result.valid ? `${describeValidation(result.valid)}\n` : '') +
          `\ntest split (reported; choose settings on validation):\n` +
          metricsTable(
            [
              [`SASRec v${result.versionId}`, result.test],
              ...(result.cooccurrence?.kept ? [['… network alone', result.cooccurrence.networkTest] as [string, Evaluation]] : []),
              ...result.members.flatMap((m): [string, Evaluation][] => (m.test ? [[`member ${m.member + 1}`, m.test]] : [])),
              ...Object.entries(result.baselines),
            ],
            [10],
            Number(flags['sampled-negatives']),
            result.exclude,
          ) +
          (result.nextPurchase ? describeNextPurchase(result.versionId, result.nextPurchase, result.exclude) : ''),
      );
    }
  } finally {
    await store.close();
  }
});

function describeNextPurchase(versionId: number, p: NextPurchaseSummary, exclude: ExcludePolicy): string {
  const valid = p.valid ? `validation, ${formatCount(p.valid.users)} held-out users: NDCG@10 ${p.valid.model.full.ndcg[10]!.toFixed(4)}, HR@10 ${p.valid.model.full.hr[10]!.toFixed(4)}\n` : '';
  return `\nnext purchase (each user's last purchase, ranked from every event before it):\n${valid}${metricsTable([[`SASRec v${versionId}`, p.test] as const, ...Object.entries(p.baselines)].map(([name, { sampled: _sampled, ...e }]) => [name, e] as const), [10], undefined, exclude)}`;
}

function describeCooccurrence(c: CooccurrenceSummary): string {
  const fit = `validation NDCG@10 ${c.networkValidNdcg10.toFixed(4)} → ${c.validNdcg10.toFixed(4)} on ${c.users} users`;
  const cooccurrence =
    c.params.weight > 0
      ? `co-occurrence term: weight ${c.params.weight}, scale ${c.params.scale}, decay ${c.params.decay} (${fit})`
      : `co-occurrence term: left out, the network alone was best on validation (NDCG@10 ${c.networkValidNdcg10.toFixed(4)} on ${c.users} users)`;
  return c.repeat ? `${cooccurrence}\n${describeRepeat(c.repeat)}` : cooccurrence;
}

function describeRepeat(r: RepeatFit): string {
  const fit = `validation NDCG@10 ${r.withoutValidNdcg10.toFixed(4)} → ${r.validNdcg10.toFixed(4)}; ${r.repeatTargets} of ${r.users} held-out items repeat a history item`;
  return r.repeatWeight > 0 ? `repeat term: weight ${r.repeatWeight}, decay ${r.repeatDecay} (${fit})` : `repeat term: left out, it did not help on validation (${fit})`;
}

function describeValidation(v: ValidationSummary): string {
  const network = v.network ? ` (network alone ${v.network.full.ndcg[10]!.toFixed(4)} / ${v.network.full.hr[10]!.toFixed(4)})` : '';
  return `validation, ${formatCount(v.users)} held-out users, full ranking: NDCG@10 ${v.model.full.ndcg[10]!.toFixed(4)}, HR@10 ${v.model.full.hr[10]!.toFixed(4)}${network}`;
}
