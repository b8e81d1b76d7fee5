import { BUILTIN_EVENT_TYPES } from './import/event-types.js';
import { uuidV7Floor } from './impressions.js';
import type { Store } from './store.js';

/** What online metrics are grouped by: the model version that answered, the experiment variant, or the route. */
export type OnlineGroupBy = 'version' | 'variant' | 'route';

/**
 * The outcome counts of the impressions made in a period, per group (and per
 * time bucket when asked): impressions, and how many of them were followed by
 * an attributed view, cart and purchase of an item they showed (each counted
 * once per impression, so the rates are proportions), with the attributed
 * purchases' revenue (value × quantity, quantity 1 when absent) and its sum of
 * squares per impression, for the revenue interval.
 */
export interface OnlineCounts {
  /** version: 'v<n>', or 'popular' when no model answered; variant: '<experiment id>/<variant>', or 'none' outside experiments; route: its name. */
  readonly group: string;
  /** Start of the time bucket (epoch ms), when bucketed; else the period's start. */
  readonly bucket: number;
  readonly impressions: number;
  readonly viewed: number;
  readonly carted: number;
  readonly purchased: number;
  readonly revenue: number;
  readonly revenueSquares: number;
}

export interface OnlineQuery {
  /** Epoch ms, inclusive; impressions are selected by their id (a UUIDv7), so by the time they were shown. */
  readonly from: number;
  /** Epoch ms, exclusive. */
  readonly to: number;
  readonly groupBy: OnlineGroupBy;
  /** Only this experiment's impressions. */
  readonly experimentId?: number;
  /** Split the period into buckets of this many ms (absent: one bucket). */
  readonly bucketMs?: number;
}

const GROUP_SQL: Record<OnlineGroupBy, Record<Store['provider'], string>> = {
  version: { sqlite: "COALESCE('v' || i.model_version, 'popular')", postgresql: "COALESCE('v' || i.model_version::text, 'popular')" },
  variant: { sqlite: "COALESCE(i.experiment_id || '/' || i.variant, 'none')", postgresql: "COALESCE(i.experiment_id::text || '/' || i.variant, 'none')" },
  route: { sqlite: 'i.route', postgresql: 'i.route' },
};

/**
 * Sums, per group and bucket, over the impressions of [from, to) and the
 * attributions of those impressions (attributions are keyed by impression, so
 * an outcome that came after `to` still counts for an impression shown
 * before it). Both tables are read as ranges of their time-ordered keys.
 */
export async function onlineCounts(store: Store, query: OnlineQuery): Promise<OnlineCounts[]> {
  const { view, cart, purchase } = BUILTIN_EVENT_TYPES as { view: number; cart: number; purchase: number };
  const low = uuidV7Floor(query.from);
  const high = uuidV7Floor(query.to);
  const bucketMs = Math.max(1, Math.floor(query.bucketMs ?? Math.max(1, query.to - query.from)));
  const sqlite = store.provider === 'sqlite';
  // Impressions' ts: SQLite stores epoch ms; PostgreSQL a UTC TIMESTAMP(3). better-sqlite3 binds numbers as REAL, so SQLite's bucket is truncated explicitly.
  const ms = sqlite ? 'i.ts' : "(EXTRACT(EPOCH FROM i.ts) * 1000)::bigint";
  // Each parameter appears twice: named on SQLite (better-sqlite3 binds an object), numbered on PostgreSQL.
  const NAMES = ['', 'low', 'high', 'from', 'bucket', 'experiment'];
  const p = (n: number) => (sqlite ? `@${NAMES[n]}` : `$${n}`);
  const sql = `
    WITH outcome AS (
      SELECT a.impression_id,
             MAX(CASE WHEN a.type_id = ${view} THEN 1 ELSE 0 END) AS viewed,
             MAX(CASE WHEN a.type_id = ${cart} THEN 1 ELSE 0 END) AS carted,
             MAX(CASE WHEN a.type_id = ${purchase} THEN 1 ELSE 0 END) AS purchased,
             SUM(CASE WHEN a.type_id = ${purchase} THEN COALESCE(a.value, 0) * COALESCE(a.quantity, 1) ELSE 0 END) AS revenue
        FROM attributions a
       WHERE a.impression_id >= ${p(1)} AND a.impression_id < ${p(2)}
       GROUP BY a.impression_id
    )
    SELECT ${GROUP_SQL[query.groupBy][store.provider]} AS grp,
           ${sqlite ? `${p(3)} + CAST((${ms} - ${p(3)}) / ${p(4)} AS INTEGER) * ${p(4)}` : `${p(3)} + ((${ms} - ${p(3)}) / ${p(4)}) * ${p(4)}`} AS bucket,
           COUNT(*) AS impressions,
           COALESCE(SUM(o.viewed), 0) AS viewed,
           COALESCE(SUM(o.carted), 0) AS carted,
           COALESCE(SUM(o.purchased), 0) AS purchased,
           COALESCE(SUM(o.revenue), 0) AS revenue,
           COALESCE(SUM(o.revenue * o.revenue), 0) AS revenue_squares
      FROM impressions i
      LEFT JOIN outcome o ON o.impression_id = i.id
     WHERE i.id >= ${p(1)} AND i.id < ${p(2)}
       ${query.experimentId !== undefined ? `AND i.experiment_id = ${p(5)}` : ''}
     GROUP BY 1, 2
     ORDER BY 2, 1`;
  const params: unknown[] = [low, high, query.from, bucketMs, ...(query.experimentId !== undefined ? [query.experimentId] : [])];
  type Raw = { grp: string; bucket: number | string; impressions: number | string; viewed: number | string; carted: number | string; purchased: number | string; revenue: number | string; revenue_squares: number | string };
  const rows: Raw[] = sqlite
    ? (store.db.prepare(sql).all(Object.fromEntries(params.map((v, i) => [NAMES[i + 1]!, v]))) as Raw[])
    : (await store.pool.query<Raw>(sql, params)).rows;
  return rows.map((r) => ({
    group: r.grp,
    bucket: Number(r.bucket),
    impressions: Number(r.impressions),
    viewed: Number(r.viewed),
    carted: Number(r.carted),
    purchased: Number(r.purchased),
    revenue: Number(r.revenue),
    revenueSquares: Number(r.revenue_squares),
  }));
}

export type Counts = Omit<OnlineCounts, 'group' | 'bucket'>;
export const NO_COUNTS: Counts = { impressions: 0, viewed: 0, carted: 0, purchased: 0, revenue: 0, revenueSquares: 0 };

/**
 * An experiment's counts per variant name, from its start to its stop (or
 * `now`); a variant without impressions has NO_COUNTS. A draft has none.
 */
export async function variantCounts(store: Store, experiment: { readonly id: number; readonly startedAt: Date | null; readonly stoppedAt: Date | null; readonly variants: readonly { readonly name: string }[] }, now = Date.now()): Promise<Map<string, Counts>> {
  const out = new Map<string, Counts>();
  if (!experiment.startedAt) return out;
  const to = (experiment.stoppedAt?.getTime() ?? now) + 1;
  const rows = await onlineCounts(store, { from: experiment.startedAt.getTime(), to, groupBy: 'variant', experimentId: experiment.id });
  // Groups are '<experiment id>/<variant>'.
  const byName = new Map(rows.map((r) => [r.group.slice(r.group.indexOf('/') + 1), r]));
  for (const { name } of experiment.variants) {
    const row = byName.get(name);
    out.set(name, row ? { impressions: row.impressions, viewed: row.viewed, carted: row.carted, purchased: row.purchased, revenue: row.revenue, revenueSquares: row.revenueSquares } : NO_COUNTS);
  }
  return out;
}
