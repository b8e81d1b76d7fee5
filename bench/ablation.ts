#!/usr/bin/env -S npx tsx
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { runJob, type FlagSpec, type JobSpec } from '../src/cli/job.js';
import { migrate } from '../src/data/migrate.js';
import { openStore } from '../src/data/store.js';
import { AppError } from '../src/errors.js';
import { machineFacts, timestampForFile } from './machine.js';
import { importShippedSample, SHIPPED_DATASETS, type ShippedDataset } from './shipped-sample.js';

/**
 * Ablations of the training defaults, chosen on validation: each variant is
 * `npm run train` with the defaults and one change, on each shipped dataset
 * asked for (amazon-games, amazon-beauty), run one after another (each uses
 * every core). The result lists every variant's validation NDCG@10 / HR@10
 * (held-out users, full ranking, as served) beside its test numbers, per
 * dataset, and names the variant validation prefers: by its mean relative
 * gain over the defaults' validation NDCG@10 across the datasets (issue 21),
 * or, with one dataset, by its validation NDCG@10. Test numbers are reported,
 * never chosen on.
 */

const VARIANTS: Readonly<Record<string, readonly string[]>> = {
  default: [],
  'item-init random': ['--item-init', 'random'],
  'target-window 1': ['--target-window', '1'],
  'item-replacement 0': ['--item-replacement', '0'],
  'members 1': ['--members', '1'],
  'dropout 0.5': ['--dropout', '0.5'],
  'dropout 0.7': ['--dropout', '0.7'],
  'negatives 4096': ['--negatives', '4096'],
  'epochs 22': ['--epochs', '22'],
  'no co-occurrence term': ['--no-cooccurrence'],
};

const spec = {
  name: 'bench/ablation',
  summary: 'train the defaults and variants with one change each on the shipped datasets; compare them on validation',
  usage: 'npx tsx bench/ablation.ts [options]',
  flags: {
    variants: { type: 'string', value: 'list', default: 'default,item-init random,target-window 1,item-replacement 0', description: `Comma-separated, from: ${Object.keys(VARIANTS).join(', ')}` },
    datasets: { type: 'string', value: 'list', default: 'amazon-games', description: `Comma-separated, from: ${SHIPPED_DATASETS.join(', ')} (with several, the default variant runs on each and variants are ranked by their mean relative gain over it)` },
    epochs: { type: 'string', value: 'n', description: 'Passed to every run (default: the training job default)' },
    write: { type: 'boolean', default: true, description: 'Write bench/results/ablation-<timestamp>.json' },
  },
  details: `
Each run takes as long as npm run train (11-15 minutes on 2 cores). Scratch: bench/scratch/ablation-<dataset>.db
(the sample, imported once) and bench/scratch/ablation-models/ (removed after each run).`,
} satisfies JobSpec<Record<string, FlagSpec>>;

interface TrainJson {
  readonly trainSeconds: number;
  readonly members: readonly { readonly bestEpoch: number }[];
  readonly valid: { readonly users: number; readonly model: Evaluation; readonly network?: Evaluation };
  readonly test: Evaluation;
  readonly cooccurrence?: { readonly kept: boolean; readonly networkTest: Evaluation };
}
interface Evaluation {
  readonly full: { readonly ndcg: Record<string, number>; readonly hr: Record<string, number> };
  readonly sampled?: { readonly ndcg: Record<string, number>; readonly hr: Record<string, number> };
}

const ROOT = join(import.meta.dirname, '..');
const round = (x: number | undefined): number | null => (x === undefined ? null : Math.round(x * 10_000) / 10_000);

function train(args: readonly string[]): Promise<TrainJson> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', join(ROOT, 'jobs', 'train.ts'), ...args], { cwd: ROOT, stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    child.stdout.on('data', (chunk: Buffer) => (out += chunk.toString()));
    child.on('error', reject);
    child.on('close', (code) => (code === 0 ? resolve(JSON.parse(out) as TrainJson) : reject(new AppError('TRAIN_FAILED', `npm run train ${args.join(' ')} exited with ${code}`))));
  });
}

await runJob(spec, async ({ flags }) => {
  const names = flags.variants.split(',').map((v) => v.trim()).filter(Boolean);
  for (const name of names) if (!(name in VARIANTS)) throw new AppError('USAGE', `unknown variant '${name}' (known: ${Object.keys(VARIANTS).join(', ')})`);
  const datasets = flags.datasets.split(',').map((d) => d.trim()).filter(Boolean);
  for (const d of datasets) if (!(SHIPPED_DATASETS as readonly string[]).includes(d)) throw new AppError('USAGE', `unknown dataset '${d}' (known: ${SHIPPED_DATASETS.join(', ')})`);
  if (datasets.length > 1 && !names.includes('default')) names.unshift('default'); // the reference of every relative gain
  const scratch = join(import.meta.dirname, 'scratch');
  mkdirSync(scratch, { recursive: true });
  const artifacts = join(scratch, 'ablation-models');
  const started = new Date();
  const rows: Record<string, unknown>[] = [];
  for (const dataset of datasets as ShippedDataset[]) {
    const database = join(scratch, `ablation-${dataset}.db`);
    const url = `file:${database}`;
    if (!existsSync(database)) {
      const store = openStore(url);
      try {
        await migrate(store);
        await importShippedSample(store, dataset);
      } finally {
        await store.close();
      }
    }
    for (const name of names) {
      process.stderr.write(`\n== ${dataset}: ${name} ==\n`);
      const result = await train(['--database-url', url, '--artifacts', artifacts, '--activate', 'never', '--json', ...(flags.epochs ? ['--epochs', flags.epochs] : []), ...VARIANTS[name]!]);
      rmSync(artifacts, { recursive: true, force: true });
      rows.push({
        dataset,
        variant: name,
        flags: VARIANTS[name]!.join(' '),
        valid_users: result.valid.users,
        valid_ndcg10: round(result.valid.model.full.ndcg[10]),
        valid_hr10: round(result.valid.model.full.hr[10]),
        valid_network_ndcg10: round((result.valid.network ?? result.valid.model).full.ndcg[10]),
        test_ndcg10: round(result.test.full.ndcg[10]),
        test_hr10: round(result.test.full.hr[10]),
        test_sampled_ndcg10: round(result.test.sampled?.ndcg[10]),
        term_kept: result.cooccurrence?.kept ?? false,
        train_seconds: Math.round(result.trainSeconds),
        best_epochs: result.members.map((m) => m.bestEpoch),
      });
      process.stderr.write(`${JSON.stringify(rows.at(-1))}\n`);
    }
  }
  const ranking = rankVariants(rows as unknown as AblationRow[], names, datasets);
  const body = {
    benchmark: 'ablation',
    started: started.toISOString(),
    machine: machineFacts(),
    datasets,
    protocol:
      "leave-one-out; validation = each user's second-to-last event, full ranking, users outside the co-occurrence fit sample; " +
      (datasets.length > 1 ? 'variants ranked by the mean over datasets of valid_ndcg10 / the default\'s valid_ndcg10 - 1' : 'chosen on valid_ndcg10') +
      '; test reported only',
    variants: rows,
    ranking,
    chosen_on_validation: ranking[0]!.variant,
  };
  const text = JSON.stringify(body, null, 2);
  process.stdout.write(`${text}\n`);
  if (flags.write) {
    const file = join(import.meta.dirname, 'results', `ablation-${timestampForFile(started)}.json`);
    writeFileSync(file, `${text}\n`);
    process.stderr.write(`wrote ${file}\n`);
  }
});

interface AblationRow {
  readonly dataset: string;
  readonly variant: string;
  readonly valid_ndcg10: number;
}

/**
 * Variants best first: with several datasets by their mean relative gain in
 * validation NDCG@10 over the default on each; with one, by the NDCG itself.
 */
function rankVariants(rows: readonly AblationRow[], names: readonly string[], datasets: readonly string[]): { variant: string; mean_relative_gain: number | null; valid_ndcg10: Record<string, number> }[] {
  const of = (variant: string, dataset: string): number => rows.find((r) => r.variant === variant && r.dataset === dataset)!.valid_ndcg10;
  const ranked = names.map((variant) => {
    const valid = Object.fromEntries(datasets.map((d) => [d, of(variant, d)]));
    const gain = names.includes('default') ? datasets.reduce((sum, d) => sum + of(variant, d) / of('default', d) - 1, 0) / datasets.length : null;
    return { variant, mean_relative_gain: gain === null ? null : Math.round(gain * 10_000) / 10_000, valid_ndcg10: valid };
  });
  const key = (r: (typeof ranked)[number]): number => (datasets.length > 1 ? r.mean_relative_gain! : r.valid_ndcg10[datasets[0]!]!);
  return ranked.sort((a, b) => key(b) - key(a));
}
