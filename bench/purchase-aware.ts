/**
 * Purchase-aware training on a multi-type log (issue 20, part 4): what `--target-weights` and
 * `--target-types` do to the next purchase, and what the event-type embeddings are worth. A shop of the
 * shipped sample's kind with more users (scripts/generate-shop-sample.ts --users, default 4,000, so about
 * a thousand users have the two purchases the protocol needs) is imported into a scratch store, and
 * `npm run train -- --eval-type purchase` runs once per variant with its defaults otherwise: every
 * variant validates (early stopping, the co-occurrence fit) on the next purchase, and reports it and
 * the next event on the same splits. The variant to recommend is chosen on next-purchase validation
 * NDCG@10; test numbers are reported beside it, not chosen on.
 *
 *   npx tsx bench/purchase-aware.ts [--users 4000] [--seed 42] [--no-write]
 *
 * Writes bench/results/purchase-aware-<timestamp>.json.
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { ROOT } from '../src/cli/processes.js';
import { generateShopSample, SHOP_SAMPLE_SEED } from '../scripts/generate-shop-sample.js';
import { machineFacts, writeBenchResult } from './machine.js';

interface Metrics {
  readonly full: { readonly ndcg: Record<string, number>; readonly hr: Record<string, number>; readonly users: number };
}
interface TrainResult {
  readonly versionId: number;
  readonly trainSeconds: number;
  readonly members: readonly { readonly bestEpoch: number }[];
  readonly test: Metrics;
  readonly valid?: { readonly users: number; readonly model: Metrics };
  readonly baselines: Record<string, Metrics>;
  readonly nextPurchase: { readonly test: Metrics; readonly valid?: { readonly users: number; readonly model: Metrics }; readonly baselines: Record<string, Metrics> };
}

const VARIANTS: { readonly name: string; readonly flags: readonly string[] }[] = [
  { name: 'every event a target (default)', flags: [] },
  { name: 'weights view=1,cart=2,purchase=4', flags: ['--target-weights', 'view=1,cart=2,purchase=4'] },
  { name: 'targets: cart and purchase only', flags: ['--target-types', 'cart,purchase'] },
  { name: 'targets: purchase only', flags: ['--target-types', 'purchase'] },
  { name: 'no event-type embeddings', flags: ['--no-event-types'] },
];

const { values } = parseArgs({ options: { users: { type: 'string', default: '4000' }, seed: { type: 'string', default: '42' }, write: { type: 'boolean', default: true } }, allowNegative: true });
const users = Number(values.users);
const scratch = join(ROOT, 'bench', 'scratch', 'purchase-aware');
rmSync(scratch, { recursive: true, force: true });
mkdirSync(scratch, { recursive: true });
const { catalog, events } = generateShopSample(SHOP_SAMPLE_SEED, { users });
writeFileSync(join(scratch, 'shop-catalog.csv'), catalog);
writeFileSync(join(scratch, 'shop-events.csv'), events);
const url = `file:${join(scratch, 'shop.db')}`;
const started = new Date();
const job = (name: string, args: readonly string[]): string =>
  execFileSync(process.execPath, ['--import', 'tsx', join(ROOT, 'jobs', `${name}.ts`), '--database-url', url, ...args], { cwd: ROOT, encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'], maxBuffer: 1 << 28 });
job('import', ['--quiet', '--items', join(scratch, 'shop-catalog.csv'), join(scratch, 'shop-events.csv')]);

const ndcg = (m: Metrics | undefined): number => round(m?.full.ndcg['10'] ?? NaN);
const hr = (m: Metrics | undefined): number => round(m?.full.hr['10'] ?? NaN);
const runs = VARIANTS.map((variant) => {
  process.stderr.write(`training: ${variant.name}\n`);
  const r = JSON.parse(job('train', ['--json', '--quiet', '--eval-type', 'purchase', '--activate', 'never', '--seed', values.seed!, '--artifacts', join(scratch, 'models'), ...variant.flags])) as TrainResult;
  return {
    variant: variant.name,
    flags: variant.flags.join(' '),
    train_seconds: Math.round(r.trainSeconds),
    best_epochs: r.members.map((m) => m.bestEpoch),
    next_purchase: {
      valid: { ndcg_at_10: ndcg(r.nextPurchase.valid?.model), hr_at_10: hr(r.nextPurchase.valid?.model), users: r.nextPurchase.valid?.users },
      test: { ndcg_at_10: ndcg(r.nextPurchase.test), hr_at_10: hr(r.nextPurchase.test), users: r.nextPurchase.test.full.users },
      baselines_test: Object.fromEntries(Object.entries(r.nextPurchase.baselines).map(([name, m]) => [name, { ndcg_at_10: ndcg(m), hr_at_10: hr(m) }])),
    },
    next_event: {
      valid: { ndcg_at_10: ndcg(r.valid?.model), hr_at_10: hr(r.valid?.model), users: r.valid?.users },
      test: { ndcg_at_10: ndcg(r.test), hr_at_10: hr(r.test), users: r.test.full.users },
      baselines_test: Object.fromEntries(Object.entries(r.baselines).map(([name, m]) => [name, { ndcg_at_10: ndcg(m), hr_at_10: hr(m) }])),
    },
  };
});
const chosen = runs.reduce((best, run) => (run.next_purchase.valid.ndcg_at_10 > best.next_purchase.valid.ndcg_at_10 ? run : best));

const result = {
  benchmark: 'purchase-aware',
  started: started.toISOString(),
  machine: machineFacts(),
  dataset: `generated shop, ${users} users (npx tsx scripts/generate-shop-sample.ts --users ${users}; the shipped sample is the same generator with 1,000): ${events.split('\n').length - 2} events`,
  seed: Number(values.seed),
  protocol:
    "npm run train -- --eval-type purchase: next purchase = each user's last purchase ranked from every event before it (validation: the purchase before it); next event = the standard leave-one-out on any event type; training stops before both splits' targets. Full ranking, the history's items left out except the target.",
  chosen_on_next_purchase_validation: chosen.variant,
  runs,
};
const json = JSON.stringify(result, null, 2);
process.stdout.write(`${json}\n`);
if (values.write) process.stderr.write(`wrote ${writeBenchResult(join(ROOT, 'bench', 'results'), 'purchase-aware', started, json)}\n`);

function round(x: number, digits = 4): number {
  return Math.round(x * 10 ** digits) / 10 ** digits;
}
