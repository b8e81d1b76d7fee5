#!/usr/bin/env -S npx tsx
import { integerFlag, runJob, type FlagSpec, type JobSpec } from '../src/cli/job.js';
import { DEFAULT_DATABASE_URL } from '../src/config/database-url.js';
import { openStore } from '../src/data/store.js';
import { AppError } from '../src/errors.js';
import { evaluateVersion } from '../src/evaluate/evaluate-version.js';
import { EVAL_TYPES, type EvalType } from '../src/data/leave-one-out-split.js';
import { EXCLUDE_POLICIES, type ExcludePolicy } from '../src/data/exclusion.js';
import { bandTable, metricsTable } from '../src/evaluate/metrics-table.js';
import { BACKEND_PREFERENCES, selectBackend, type BackendPreference } from '../src/model/backend.js';

const spec = {
  name: 'jobs/evaluate',
  summary: "measure a model version on the store's histories beside the popularity, most-recent-item, item-knn and history-frequency baselines",
  usage: 'npm run evaluate -- --model <version> [options]',
  flags: {
    model: { type: 'string', value: 'version', description: 'Model version id (required)' },
    phase: { type: 'string', value: 'name', default: 'test', choices: ['test', 'valid'], description: 'Rank the last held-out target (test) or the one before it (valid)' },
    'eval-type': { type: 'string', value: 'what', choices: EVAL_TYPES, description: "Hold out each user's next event, or next purchase (the last purchase, ranked from every event before it) (default: what the version was trained with, see npm run train -- --eval-type)" },
    exclude: { type: 'string', value: 'policy', choices: EXCLUDE_POLICIES, description: "Which of a user's history items the ranking leaves out, as the API's exclude does (purchased, seen, none); a held-out item it leaves out counts as a miss (default: the version's training setting)" },
    'sampled-negatives': { type: 'string', value: 'n', default: '100', description: "Negatives of the SASRec paper's sampled protocol (reported separately)" },
    seed: { type: 'string', value: 'n', description: "Seed of the sampled protocol (default: the version's training seed)" },
    baselines: { type: 'boolean', default: true, description: 'Also evaluate the baselines; --no-baselines to skip them' },
    backend: { type: 'string', value: 'name', default: 'auto', choices: BACKEND_PREFERENCES, description: 'TensorFlow.js backend' },
    'database-url': { type: 'string', value: 'url', description: `Database (default: $DATABASE_URL, else ${DEFAULT_DATABASE_URL})` },
    'by-popularity': { type: 'boolean', default: false, description: "Also break the model's metrics down by how often the held-out item occurs in training" },
    json: { type: 'boolean', default: false, description: 'Print the result as JSON on stdout' },
  },
  details: `
Protocol: leave-one-out, as in training: each user's next event, or with --eval-type purchase the next
purchase (the version's training split by default). Full ranking ranks the held-out item against every item the
model knows, the history's items excluded: NDCG@k, HR@k for k = 1, 5, 10, 20 and MRR. The sampled
protocol ranks it against N items drawn uniformly from those the user never touched (Kang & McAuley
2018); it overstates accuracy and can reorder models, so it is printed apart and labelled.
Baselines on the same split: popularity (most frequent items), most-recent-item (items that most
often followed the history's most recent item), item-knn (the co-occurrence scores alone: each item's
100 strongest neighbours by cosine, summed over the history with a decay chosen on validation users) and
history-frequency (the history's own items, most frequent first, then most recent: "buy it again"). A version with a co-occurrence term is measured as
served (network + term) and, on the next line, as the attention network alone. On the data the
version was trained on, this repeats the training job's test metrics exactly.`,
} satisfies JobSpec<Record<string, FlagSpec>>;

await runJob(spec, async ({ flags }) => {
  if (flags.model === undefined) throw new AppError('USAGE', '--model <version> is required (see --help)');
  const versionId = integerFlag('model', flags.model, 1, 2 ** 31 - 1);
  const sampledNegatives = integerFlag('sampled-negatives', flags['sampled-negatives'], 1, 100_000);
  const seed = flags.seed === undefined ? undefined : integerFlag('seed', flags.seed, 0, 2 ** 31 - 1);
  const backend = await selectBackend(flags.backend as BackendPreference);
  const store = openStore(flags['database-url'] ?? process.env.DATABASE_URL);
  try {
    const result = await evaluateVersion(store, versionId, { phase: flags.phase as 'test' | 'valid', ...(flags['eval-type'] !== undefined && { evalType: flags['eval-type'] as EvalType }), ...(flags.exclude !== undefined && { exclude: flags.exclude as ExcludePolicy }), sampledNegatives, baselines: flags.baselines, byTargetPopularity: flags['by-popularity'], ...(seed !== undefined && { seed }) });
    if (flags.json) {
      process.stdout.write(`${JSON.stringify({ ...result, backend: backend.name }, null, 2)}\n`);
      return;
    }
    if (result.warning) process.stderr.write(`note: ${result.warning}\n`);
    if (result.dataChanged) {
      process.stderr.write(`note: the store changed since version ${versionId} was trained; measuring it on today's histories (${result.unknownItemEvents} events of unknown items left out)\n`);
    }
    process.stdout.write(
      `model version ${versionId}, ${result.phase} split, next ${result.evalType}, ${backend.name} backend\n\n` +
        metricsTable([[`SASRec v${versionId}`, result.model], ...(result.network ? [['… network alone', result.network] as [string, typeof result.model]] : []), ...Object.entries(result.baselines)], [1, 5, 10, 20], sampledNegatives, result.exclude) +
        (result.byTargetPopularity ? `\n${bandTable(result.byTargetPopularity)}` : ''),
    );
  } finally {
    await store.close();
  }
});
