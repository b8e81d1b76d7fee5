import type { Store } from '../data/store.js';
import { AppError } from '../errors.js';

/**
 * Two model versions side by side: every setting (flattened to dotted keys,
 * differences marked) and the headline metrics, for a data scientist
 * deciding which one to serve.
 */
export interface VersionComparison {
  readonly versions: readonly [VersionSummary, VersionSummary];
  /** Dotted key → the two values (undefined where a version lacks the key). */
  readonly settings: readonly { readonly key: string; readonly values: readonly [unknown, unknown]; readonly differs: boolean }[];
  readonly metrics: readonly { readonly key: string; readonly values: readonly [number | undefined, number | undefined] }[];
}

export interface VersionSummary {
  readonly id: number;
  readonly status: string;
  readonly active: boolean;
  readonly createdAt: string;
  readonly dataHash: string;
}

/** Validation first: versions are chosen on it (versions trained before it was recorded show '—'); test is reported. */
const METRICS: readonly [string, string][] = [
  ['valid full NDCG@10', 'valid.model.full.ndcg.10'],
  ['valid full HR@10', 'valid.model.full.hr.10'],
  ['test full NDCG@10', 'test.full.ndcg.10'],
  ['test full HR@10', 'test.full.hr.10'],
  ['test full MRR', 'test.full.mrr'],
  ['test full NDCG@20', 'test.full.ndcg.20'],
  ['test sampled NDCG@10', 'test.sampled.ndcg.10'],
  ['test sampled HR@10', 'test.sampled.hr.10'],
  ['popularity full NDCG@10', 'baselines.popularity.full.ndcg.10'],
  ['most-recent-item full NDCG@10', 'baselines.most-recent-item.full.ndcg.10'],
  ['item-knn full NDCG@10', 'baselines.item-knn.full.ndcg.10'],
  ['training seconds', 'trainSeconds'],
];

export async function compareVersions(store: Store, a: number, b: number): Promise<VersionComparison> {
  const rows = await Promise.all(
    [a, b].map(async (id) => {
      const row = await store.prisma.modelVersion.findUnique({ where: { id } });
      if (!row) throw new AppError('MODEL_VERSION_NOT_FOUND', `there is no model version ${id}`);
      return row;
    }),
  );
  const [first, second] = rows as [(typeof rows)[number], (typeof rows)[number]];
  const configs = [flatten(first.config), flatten(second.config)] as const;
  const keys = [...new Set([...configs[0].keys(), ...configs[1].keys()])].sort();
  const metricsOf = [flatten(first.metrics), flatten(second.metrics)] as const;
  const number = (m: Map<string, unknown>, key: string): number | undefined => (typeof m.get(key) === 'number' ? (m.get(key) as number) : undefined);
  return {
    versions: [summary(first), summary(second)],
    settings: [
      ...keys.map((key) => {
        const values = [configs[0].get(key), configs[1].get(key)] as const;
        return { key, values, differs: JSON.stringify(values[0]) !== JSON.stringify(values[1]) };
      }),
      { key: 'dataHash', values: [first.dataHash, second.dataHash] as const, differs: first.dataHash !== second.dataHash },
    ],
    metrics: METRICS.map(([label, path]) => ({ key: label, values: [number(metricsOf[0], path), number(metricsOf[1], path)] as const })),
  };
}

function summary(row: { id: number; status: string; active: boolean; createdAt: Date; dataHash: string }): VersionSummary {
  return { id: row.id, status: row.status, active: row.active, createdAt: row.createdAt.toISOString(), dataHash: row.dataHash };
}

/** Nested JSON to dotted keys; arrays (per-epoch lists) are skipped, they do not line up between versions. */
export function flatten(value: unknown, prefix = '', out = new Map<string, unknown>()): Map<string, unknown> {
  if (value !== null && typeof value === 'object' && !Array.isArray(value)) {
    for (const [k, v] of Object.entries(value)) flatten(v, prefix ? `${prefix}.${k}` : k, out);
  } else if (!Array.isArray(value) && prefix) out.set(prefix, value);
  return out;
}
