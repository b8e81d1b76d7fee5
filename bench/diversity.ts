/**
 * What a diversity cap (maxPer, docs/merchandising.md) costs in offline accuracy, and what it buys:
 * the generated shop sample (samples/shop-*.csv, the only shipped data with categories) imported into a
 * scratch store, a version trained by `npm run train` with its defaults, then every evaluated user's
 * next event ranked as the evaluation job ranks it (full ranking, leave-one-out, the history's items
 * left out except the target) into a top 10 chosen greedily in score order with at most n items per
 * category (or brand), as serving chooses. Reports NDCG@10 and HR@10 beside the uncapped list, and how
 * many categories the top 10 spans, on the validation and the test split.
 *
 *   npx tsx bench/diversity.ts [--no-write]
 *
 * Writes bench/results/diversity-<timestamp>.json.
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { ROOT } from '../src/cli/processes.js';
import { inputLengths, leaveOneOutSplit } from '../src/data/leave-one-out-split.js';
import { loadSequences } from '../src/data/sequences.js';
import { openStore } from '../src/data/store.js';
import { modelScorer } from '../src/evaluate/evaluate.js';
import { loadModel } from '../src/model/artifact.js';
import { selectBackend } from '../src/model/backend.js';
import { ItemVocabulary } from '../src/model/vocabulary.js';
import { machineFacts, writeBenchResult } from './machine.js';

const { values } = parseArgs({ options: { write: { type: 'boolean', default: true } }, allowNegative: true });
const scratch = join(ROOT, 'bench', 'scratch');
mkdirSync(scratch, { recursive: true });
const file = join(scratch, 'diversity.db');
for (const suffix of ['', '-wal', '-shm']) rmSync(file + suffix, { force: true });
const url = `file:${file}`;
const started = new Date();
const job = (name: string, args: string[]): string => execFileSync(process.execPath, ['--import', 'tsx', join(ROOT, 'jobs', `${name}.ts`), '--database-url', url, ...args], { cwd: ROOT, encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] });
job('import', ['--quiet', '--items', join(ROOT, 'samples', 'shop-catalog.csv'), join(ROOT, 'samples', 'shop-events.csv')]);
const trained = JSON.parse(job('train', ['--json', '--quiet', '--artifacts', join(scratch, 'diversity-models')])) as { versionId: number };
await selectBackend('auto');

const store = openStore(url);
const version = await store.prisma.modelVersion.findUniqueOrThrow({ where: { id: trained.versionId } });
const { model, blend, extra } = loadModel(version.artifactPath);
const vocabulary = new ItemVocabulary(Int32Array.from((extra as { vocabulary: number[] }).vocabulary));
const items = new Map((await store.prisma.item.findMany({ select: { id: true, category: true, properties: true } })).map((i) => [i.id, i]));
const groupOf = {
  category: (index: number): string | undefined => items.get(vocabulary.itemAt(index))?.category ?? undefined,
  brand: (index: number): string | undefined => (items.get(vocabulary.itemAt(index))?.properties as { brand?: string } | null)?.brand,
};
const sequences = await loadSequences(store);
await store.close();
// The training snapshot: every item is known to the version.
const data = { offsets: sequences.offsets, items: vocabulary.encode(sequences.items), types: sequences.types };
const split = leaveOneOutSplit(data.offsets);
const scorer = modelScorer(model, data, blend);
const rows = model.config.numItems + 1;

interface Variant {
  readonly name: string;
  readonly by?: keyof typeof groupOf;
  readonly max?: number;
}
const VARIANTS: Variant[] = [{ name: 'uncapped' }, { name: 'category:3', by: 'category', max: 3 }, { name: 'category:2', by: 'category', max: 2 }, { name: 'category:1', by: 'category', max: 1 }, { name: 'brand:2', by: 'brand', max: 2 }];

function measure(phase: 'valid' | 'test'): Record<string, unknown> {
  const inputs = inputLengths(split, phase);
  const inputLength = (s: number): number => inputs[s]!;
  const sums = VARIANTS.map(() => ({ ndcg: 0, hr: 0, categories: 0 }));
  const users = Array.from(split.evaluated);
  for (let start = 0; start < users.length; start += 256) {
    const batch = users.slice(start, start + 256);
    const scores = scorer(batch, inputLength);
    batch.forEach((s, row) => {
      const begin = data.offsets[s]!;
      const target = data.items[begin + inputLength(s)]!;
      const history = new Set(data.items.subarray(begin, begin + inputLength(s)));
      const rowScores = scores.subarray(row * rows, (row + 1) * rows);
      // The protocol's candidates: every item outside the history, and the target.
      const ordered: number[] = [];
      for (let item = 1; item < rows; item++) if (item === target || !history.has(item)) ordered.push(item);
      ordered.sort((a, b) => rowScores[b]! - rowScores[a]! || a - b);
      VARIANTS.forEach((variant, v) => {
        const counts = new Map<string, number>();
        const top: number[] = [];
        for (const item of ordered) {
          if (top.length === 10) break;
          const group = variant.by && groupOf[variant.by](item);
          if (group !== undefined) {
            const count = counts.get(group) ?? 0;
            if (count >= variant.max!) continue;
            counts.set(group, count + 1);
          }
          top.push(item);
        }
        const rank = top.indexOf(target);
        if (rank >= 0) {
          sums[v]!.ndcg += 1 / Math.log2(rank + 2);
          sums[v]!.hr += 1;
        }
        sums[v]!.categories += new Set(top.map((i) => groupOf.category(i))).size;
      });
    });
  }
  return Object.fromEntries(VARIANTS.map((variant, v) => [variant.name, { ndcg_at_10: round(sums[v]!.ndcg / users.length), hr_at_10: round(sums[v]!.hr / users.length), categories_in_top_10: round(sums[v]!.categories / users.length, 2) }]));
}

const result = {
  benchmark: 'diversity',
  started: started.toISOString(),
  machine: machineFacts(),
  dataset: 'samples/shop-events.csv (generated; scripts/generate-shop-sample.ts)',
  model_version: { id: trained.versionId, config: version.config },
  protocol: "leave-one-out full ranking of each user's next event (any type), the history's items left out except the target, as the evaluation job; the top 10 chosen greedily in score order with at most n items per category (or brand), as serving's maxPer",
  users: { valid: split.evaluated.length, test: split.evaluated.length },
  valid: measure('valid'),
  test: measure('test'),
};
model.dispose();
const json = JSON.stringify(result, null, 2);
process.stdout.write(`${json}\n`);
if (values.write) process.stderr.write(`wrote ${writeBenchResult(join(ROOT, 'bench', 'results'), 'diversity', started, json)}\n`);

function round(x: number, digits = 4): number {
  return Math.round(x * 10 ** digits) / 10 ** digits;
}
