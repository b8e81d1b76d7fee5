import { DEFAULT_EXCLUDE, type ExcludePolicy } from '../data/exclusion.js';
import type { Evaluation } from './evaluate.js';
import type { RankingMetrics } from './metrics.js';

/**
 * Plain-text tables of ranking metrics for the jobs' output: one row per
 * model or baseline, full ranking first, the sampled protocol separately
 * and labelled as such.
 */
export function metricsTable(rows: readonly (readonly [string, Evaluation])[], cutoffs: readonly number[] = [10], sampledNegatives?: number, exclude: ExcludePolicy = DEFAULT_EXCLUDE): string {
  const header = ['', ...cutoffs.map((k) => `NDCG@${k}`), ...cutoffs.map((k) => `HR@${k}`), 'MRR'];
  const line = (m: RankingMetrics): string[] => [...cutoffs.map((k) => fixed(m.ndcg[k])), ...cutoffs.map((k) => fixed(m.hr[k])), fixed(m.mrr)];
  const users = rows[0]?.[1].full.users ?? 0;
  const sections: [string, string[][]][] = [[`full ranking, ${exclusionPhrase(exclude)} (${users} users)`, rows.map(([name, e]) => [name, ...line(e.full)])]];
  const sampled = rows.filter(([, e]) => e.sampled);
  if (sampled.length > 0) {
    sections.push([`sampled protocol of the SASRec paper: ${sampledNegatives ?? 100} random unseen items (overstates accuracy)`, sampled.map(([name, e]) => [name, ...line(e.sampled!)])]);
  }
  const format = columns(header, sections.flatMap(([, r]) => r));
  const tables = sections.map(([title, r]) => `${title}\n  ${format(header)}\n${r.map((cells) => `  ${format(cells)}`).join('\n')}\n`);
  const split = targetSplitTable(rows);
  return [...tables, ...(split ? [split] : [])].join('\n');
}

/** What the full ranking leaves out, in words, for a table's title. */
export function exclusionPhrase(exclude: ExcludePolicy): string {
  if (exclude === 'none') return 'every item ranked (exclude=none)';
  const what = exclude === 'seen' ? 'items' : 'purchases';
  return `the history's ${what} left out (exclude=${exclude}; a held-out item among them counts as a miss)`;
}

/** Full-ranking metrics split by whether the held-out item repeats one of the history, with the users of each. */
function targetSplitTable(rows: readonly (readonly [string, Evaluation])[], cutoffs: readonly number[] = [10]): string | undefined {
  const split = rows.filter(([, e]) => e.novel && e.repeat);
  if (split.length === 0) return undefined;
  const [, first] = split[0]!;
  const header = ['', ...cutoffs.flatMap((k) => [`NDCG@${k} novel`, `HR@${k} novel`]), ...cutoffs.flatMap((k) => [`NDCG@${k} repeat`, `HR@${k} repeat`])];
  const cells = split.map(([name, e]) => [name, ...cutoffs.flatMap((k) => [fixed(e.novel!.ndcg[k]), fixed(e.novel!.hr[k])]), ...cutoffs.flatMap((k) => [e.repeat!.users > 0 ? fixed(e.repeat!.ndcg[k]) : '-', e.repeat!.users > 0 ? fixed(e.repeat!.hr[k]) : '-'])]);
  const format = columns(header, cells);
  return `by held-out item: novel (not in the history, ${first.novel!.users} users) and repeat (in it, ${first.repeat!.users} users)\n  ${format(header)}\n${cells.map((c) => `  ${format(c)}`).join('\n')}\n`;
}

/** A row formatter whose columns fit the header and every row: the first left-aligned, the rest right-aligned. */
function columns(header: readonly string[], rows: readonly string[][]): (cells: readonly string[]) => string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((cells) => cells[i]!.length)));
  return (cells) => cells.map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join('  ');
}

function fixed(value: number | undefined): string {
  return value === undefined ? '-' : value.toFixed(4);
}

/**
 * One row per band of the held-out item's training occurrences: its share of
 * the evaluated users and NDCG@10 / HR@10, full ranking and sampled.
 */
export function bandTable(bands: readonly ({ readonly band: string } & Pick<Evaluation, 'full' | 'sampled'>)[]): string {
  const total = bands.reduce((sum, b) => sum + b.full.users, 0);
  const header = ['seen in training', 'users', 'share', 'NDCG@10', 'HR@10', 'NDCG@10 sampled', 'HR@10 sampled'];
  const rows = bands.map((b) => [
    `${b.band} times`,
    String(b.full.users),
    `${((100 * b.full.users) / Math.max(1, total)).toFixed(1)} %`,
    fixed(b.full.ndcg[10]),
    fixed(b.full.hr[10]),
    fixed(b.sampled?.ndcg[10]),
    fixed(b.sampled?.hr[10]),
  ]);
  const format = columns(header, rows);
  return `by how often the held-out item occurs in the training events\n  ${format(header)}\n${rows.map((cells) => `  ${format(cells)}`).join('\n')}\n`;
}
