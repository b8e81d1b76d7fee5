#!/usr/bin/env -S npx tsx
import { integerFlag, runJob, type FlagSpec, type JobSpec } from '../src/cli/job.js';
import { formatDuration } from '../src/cli/progress.js';
import { DEFAULT_DATABASE_URL } from '../src/config/database-url.js';
import { migrate } from '../src/data/migrate.js';
import { parseSince } from '../src/data/since.js';
import { openStore } from '../src/data/store.js';
import { AppError } from '../src/errors.js';
import { metricsTable } from '../src/evaluate/metrics-table.js';
import { BACKEND_PREFERENCES, type BackendPreference } from '../src/model/backend.js';
import { DEFAULT_CANARY, retrain } from '../src/train/retrain.js';
import { TrainingProgress } from '../src/train/training-progress.js';

const spec = {
  name: 'jobs/retrain',
  summary: "train a new version with the active version's recipe on recent events, and activate it only if it wins",
  usage: 'npm run retrain -- [options]',
  flags: {
    since: { type: 'string', value: 'when', description: 'Train and compare on events at or after this instant: ISO 8601 (2024-01-01) or a span back from now (90d, 12h); default: all events' },
    'max-events-per-user': { type: 'string', value: 'n', description: "Keep only each user's most recent n events" },
    'min-gain': { type: 'string', value: 'fraction', default: '0', description: "Activate the new version only if its test NDCG@10 beats the active one's by this fraction (0.01 = 1 %; 0 = any gain)" },
    promote: {
      type: 'string',
      value: 'how',
      default: 'auto',
      choices: ['auto', 'canary', 'never'],
      description: 'What a win leads to. auto: activate the new version; canary: start an experiment that serves it to --canary-share of shoppers beside the active version, with a guard rail (GET /v1/experiments/<id> shows its results; activate it by hand); never: train, compare and record only',
    },
    'canary-share': { type: 'string', value: 'fraction', default: String(DEFAULT_CANARY.share), description: "--promote canary: the new version's share of the traffic (above 0, at most 0.5)" },
    'canary-alpha': { type: 'string', value: 'p', default: String(DEFAULT_CANARY.alpha), description: "--promote canary: the guard rail stops the canary when its purchase conversion is worse than the active version's at this significance" },
    'canary-min-impressions': { type: 'string', value: 'n', default: String(DEFAULT_CANARY.minImpressions), description: '--promote canary: …once each variant has this many impressions' },
    epochs: { type: 'string', value: 'n', description: "Maximum epochs (default: the active version's recipe)" },
    threads: { type: 'string', value: 'n', description: 'Members trained at once (default: one per core on the wasm/cpu backends)' },
    backend: { type: 'string', value: 'name', default: 'auto', choices: BACKEND_PREFERENCES, description: 'TensorFlow.js backend (auto: tensorflow-gpu, tensorflow, wasm, cpu — the first that starts)' },
    artifacts: { type: 'string', value: 'dir', default: 'models', description: 'Folder for model versions (each in v<id>/)' },
    'database-url': { type: 'string', value: 'url', description: `Database (default: $DATABASE_URL, else ${DEFAULT_DATABASE_URL})` },
    json: { type: 'boolean', default: false, description: 'Print the result as JSON on stdout' },
    quiet: { type: 'boolean', short: 'q', default: false, description: 'No progress output' },
  },
  details: `
What it does: reads the active version's recipe (model and training settings, members, epochs, seed),
trains a new version with it on the chosen events, then ranks both versions, as the API serves them,
on the same test split of those events: each user's last event, held out from the new version's
training and never used to tune anything. A held-out item the active version never saw counts as
its miss. The new version is activated only if its full-ranking NDCG@10 wins by --min-gain (with
--promote canary it is started as a canary variant instead); otherwise
the active version keeps serving and the new one stays ready (activate it by hand, or compare with
npm run compare). The decision and both versions' numbers are stored in the new version's metrics
(retrain). Servers pick up the activation within their --model-poll interval.
Failures (no active version, no data, a crash in training) leave the active version serving; the
exit code is 2 for a known problem, 1 otherwise. Run it on a schedule with the server's
--retrain-schedule, or from cron.`,
} satisfies JobSpec<Record<string, FlagSpec>>;

await runJob(spec, async ({ flags }) => {
  const minGain = Number(flags['min-gain']);
  if (!Number.isFinite(minGain) || minGain < 0 || minGain > 10) throw new AppError('USAGE', `--min-gain must be a number from 0 to 10; got '${flags['min-gain']}'`);
  const canary = {
    share: Number(flags['canary-share']),
    alpha: Number(flags['canary-alpha']),
    minImpressions: integerFlag('canary-min-impressions', flags['canary-min-impressions'], 1, 1_000_000_000),
  };
  if (!(canary.share > 0 && canary.share <= 0.5)) throw new AppError('USAGE', `--canary-share must be a number above 0 and at most 0.5; got '${flags['canary-share']}'`);
  if (!(canary.alpha > 0 && canary.alpha < 0.5)) throw new AppError('USAGE', `--canary-alpha must be a number between 0 and 0.5; got '${flags['canary-alpha']}'`);
  const window = {
    ...(flags.since !== undefined && { since: parseSince(flags.since) }),
    ...(flags['max-events-per-user'] !== undefined && { maxEventsPerUser: integerFlag('max-events-per-user', flags['max-events-per-user'], 1, 1_000_000_000) }),
  };
  const store = openStore(flags['database-url'] ?? process.env.DATABASE_URL);
  const progress = new TrainingProgress(flags.quiet || flags.json);
  try {
    await migrate(store);
    const result = await retrain(store, {
      window,
      minGain,
      promote: flags.promote as 'auto' | 'canary' | 'never',
      canary,
      ...(flags.epochs !== undefined && { epochs: integerFlag('epochs', flags.epochs, 1, 10_000) }),
      ...(flags.threads !== undefined && { threads: integerFlag('threads', flags.threads, 1, 256) }),
      backend: flags.backend as BackendPreference,
      artifactsRoot: flags.artifacts,
      onStart: (start) => progress.onStart(start),
      onStep: progress.onStep,
      onEpoch: progress.onEpoch,
      onCompare: () => {
        progress.finish();
        progress.say('comparing both versions on the same test split');
      },
    });
    if (flags.json) {
      const { training, ...rest } = result;
      process.stdout.write(`${JSON.stringify({ ...rest, trainSeconds: training.trainSeconds, artifactPath: training.artifactPath }, null, 2)}\n`);
    } else {
      const c = result.comparison;
      process.stdout.write(
        `${result.decision === 'promoted' ? `version ${result.candidate} is now active` : result.decision === 'canary' ? `version ${result.candidate} serves a canary share (experiment ${result.experiment})` : `version ${result.previous} keeps serving`}: ${result.reason}\n` +
          `trained in ${formatDuration(result.training.trainSeconds)}; report: ${result.training.reportPath}\n\n` +
          `test split of the window (${c.users} users, ${c.items} items; ${c.previousUnknownTargets} held-out items new to v${result.previous}):\n` +
          metricsTable([
            [`v${result.previous} (was active)`, c.previous],
            [`v${result.candidate} (retrained)`, c.candidate],
          ]),
      );
    }
  } finally {
    progress.finish();
    await store.close();
  }
});
