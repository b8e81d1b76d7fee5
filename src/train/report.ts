import type { Evaluation } from '../evaluate/evaluate.js';
import type { ExcludePolicy } from '../data/exclusion.js';
import { exclusionPhrase } from '../evaluate/metrics-table.js';
import type { RankingMetrics } from '../evaluate/metrics.js';
import type { BlendFit } from './fit-cooccurrence-blend.js';
import type { RepeatFit } from './fit-repeat-term.js';

/**
 * The self-contained HTML report written beside each model version's
 * artifacts: training loss and validation NDCG@10 per epoch as charts, test
 * metrics beside the baselines, and the full configuration. No scripts and
 * no external assets: it opens from disk, offline, in any browser.
 */
export interface ReportEpoch {
  readonly epoch: number;
  readonly loss: number;
  readonly validNdcg10: number;
  readonly validHr10: number;
  readonly seconds: number;
  readonly best: boolean;
}

export interface ReportMember {
  readonly member: number;
  readonly seed: number;
  readonly bestEpoch: number;
  readonly epochs: readonly ReportEpoch[];
  /** The member alone on the test split (ensembles only). */
  readonly test?: Evaluation;
}

export interface TrainingReport {
  readonly versionId: number;
  readonly createdAt: Date;
  readonly backend: string;
  readonly dataHash: string;
  readonly config: unknown;
  /** Which history items the ranking left out (a held-out item among them counted as a miss). */
  readonly exclude: ExcludePolicy;
  /** One for a single model; an ensemble's members otherwise. */
  readonly members: readonly ReportMember[];
  /** Members trained at once. */
  readonly threads: number;
  readonly trainSeconds: number;
  readonly test: Evaluation;
  /** The version on held-out validation users (as served, and the network alone when it kept a term). */
  readonly valid?: { readonly users: number; readonly model: Evaluation; readonly network?: Evaluation };
  readonly baselines: Readonly<Record<string, Evaluation>>;
  /** The co-occurrence term's fit on validation, and the network alone on the test split. */
  readonly cooccurrence?: BlendFit & { readonly kept: boolean; readonly repeat?: RepeatFit; readonly networkTest: Evaluation };
  /** Trained with evalType 'purchase': the version and the baselines on each user's next purchase. */
  readonly nextPurchase?: { readonly test: Evaluation; readonly baselines: Readonly<Record<string, Evaluation>>; readonly valid?: { readonly users: number; readonly model: Evaluation } };
}

/** One colour per member's curve (colour-blind-safe, after Okabe & Ito). */
const MEMBER_COLOURS = ['#0072b2', '#e69f00', '#009e73', '#cc79a7', '#56b4e9', '#d55e00', '#f0e442', '#000000'];

export function renderTrainingReport(report: TrainingReport): string {
  const ensemble = report.members.length > 1;
  const rows: [string, Evaluation][] = [
    [ensemble ? `SASRec v${report.versionId} (ensemble of ${report.members.length})` : `SASRec v${report.versionId}`, report.test],
    ...(report.cooccurrence?.kept ? [['… its attention network alone (no co-occurrence term)', report.cooccurrence.networkTest] as [string, Evaluation]] : []),
    ...report.members.flatMap((m): [string, Evaluation][] => (m.test ? [[`member ${m.member + 1} alone (seed ${m.seed})`, m.test]] : [])),
    ...Object.entries(report.baselines),
  ];
  const curves = (pick: (e: ReportEpoch) => number): Curve[] =>
    report.members.map((m) => ({ label: `member ${m.member + 1}`, colour: MEMBER_COLOURS[m.member % MEMBER_COLOURS.length]!, xs: m.epochs.map((e) => e.epoch), ys: m.epochs.map(pick), markX: m.bestEpoch }));
  const epochRows = report.members.flatMap((m) =>
    m.epochs.map(
      (e) =>
        `    <tr${e.epoch === m.bestEpoch ? ' class="model"' : ''}>${ensemble ? `<td>${m.member + 1}</td>` : ''}<td>${e.epoch}</td><td>${e.loss.toFixed(4)}</td><td>${e.validNdcg10.toFixed(4)}</td><td>${e.validHr10.toFixed(4)}</td><td>${e.seconds.toFixed(1)}</td></tr>`,
    ),
  );
  const epochCount = report.members.reduce((n, m) => n + m.epochs.length, 0);
  const cutoffs = [1, 5, 10, 20];
  const metricTable = (pick: (e: Evaluation) => RankingMetrics | undefined, caption: string, tableRows: [string, Evaluation][] = rows): string => `
<table>
  <caption>${escapeHtml(caption)}</caption>
  <thead><tr><th>model</th>${cutoffs.map((k) => `<th>NDCG@${k}</th>`).join('')}${cutoffs.map((k) => `<th>HR@${k}</th>`).join('')}<th>MRR</th><th>users</th></tr></thead>
  <tbody>
${tableRows
  .map(([name, evaluation], i) => {
    const m = pick(evaluation);
    if (!m) return '';
    const cells = [...cutoffs.map((k) => m.ndcg[k] ?? NaN), ...cutoffs.map((k) => m.hr[k] ?? NaN), m.mrr].map((v) => `<td>${v.toFixed(4)}</td>`).join('');
    return `    <tr${i === 0 ? ' class="model"' : ''}><th scope="row">${escapeHtml(name)}</th>${cells}<td>${m.users}</td></tr>`;
  })
  .join('\n')}
  </tbody>
</table>`;
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>attnrec model v${report.versionId}: training report</title>
<style>
  body { font: 14px/1.45 system-ui, sans-serif; margin: 2rem auto; max-width: 60rem; padding: 0 1rem; color: #1d2330; }
  h1 { font-size: 1.4rem; margin-bottom: .2rem; } h2 { font-size: 1.1rem; margin-top: 2rem; }
  .meta { color: #5b6475; }
  .charts { display: flex; flex-wrap: wrap; gap: 1.5rem; }
  figure { margin: 0; } figcaption { font-weight: 600; margin-bottom: .3rem; }
  svg text { font-size: 11px; fill: #5b6475; }
  table { border-collapse: collapse; margin: .5rem 0 1.5rem; font-variant-numeric: tabular-nums; }
  caption { text-align: left; font-weight: 600; padding-bottom: .3rem; }
  th, td { padding: .25rem .6rem; border-bottom: 1px solid #e3e6ec; text-align: right; }
  th[scope=row] { text-align: left; } tr.model { background: #eef4ff; }
  pre { background: #f6f7f9; padding: .8rem; overflow: auto; }
  .note { color: #5b6475; max-width: 48rem; }
</style>
</head>
<body>
<h1>Model version ${report.versionId}</h1>
<p class="meta">Trained ${escapeHtml(report.createdAt.toISOString())} on <b>${escapeHtml(report.backend)}</b> in ${report.trainSeconds.toFixed(1)} s ·
${
  ensemble
    ? `an ensemble of ${report.members.length} members (${report.threads} trained at once), best epochs ${report.members.map((m) => m.bestEpoch).join(', ')}`
    : `best epoch ${report.members[0]?.bestEpoch ?? '–'} of ${epochCount}`
} · data snapshot <code>${escapeHtml(report.dataHash.slice(0, 16))}</code></p>

<h2>Training</h2>
<div class="charts">
${lineChart('Training loss per epoch', curves((e) => e.loss))}
${lineChart('Validation NDCG@10 per epoch (full ranking)', curves((e) => e.validNdcg10))}
</div>
<table>
  <caption>Epochs${ensemble ? ' of each member (validated alone)' : ''}</caption>
  <thead><tr>${ensemble ? '<th>member</th>' : ''}<th>epoch</th><th>loss</th><th>valid NDCG@10</th><th>valid HR@10</th><th>seconds</th></tr></thead>
  <tbody>
${epochRows.join('\n')}
  </tbody>
</table>

${report.valid ? `<h2>Validation</h2>\n<p class="note">${validationNote(report.valid)}</p>\n\n` : ''}<h2>Test metrics</h2>
${metricTable((e) => e.full, `Full ranking: the held-out item against every item, ${exclusionPhrase(report.exclude)}`)}
${targetSplit(rows)}
${metricTable((e) => e.sampled, 'Sampled protocol of the SASRec paper: against 100 random items the user never touched (overstates accuracy)')}
<p class="note">Baselines see exactly what the model sees. <b>popularity</b> ranks items by how often they occur in the visible events;
<b>most-recent-item</b> by how often they followed the history's most recent item (ties by popularity);
<b>item-knn</b> by the co-occurrence scores alone (each item's 100 strongest neighbours by cosine, summed over the history with a decay chosen on validation users);
<b>history-frequency</b> by the history's own items, most frequent first, then most recent (the "buy it again" list).</p>
${report.cooccurrence ? `<p class="note">${cooccurrenceNote(report.cooccurrence)}</p>` : ''}
${report.nextPurchase ? nextPurchaseSection(report.versionId, report.nextPurchase, report.exclude, metricTable) : ''}
<h2>Configuration</h2>
<pre>${escapeHtml(JSON.stringify(report.config, null, 2))}</pre>
</body>
</html>
`;
}

/** The next-purchase evaluation (evalType 'purchase'): its own table beside the baselines on the same split. */
function nextPurchaseSection(versionId: number, p: NonNullable<TrainingReport['nextPurchase']>, exclude: ExcludePolicy, table: (pick: (e: Evaluation) => RankingMetrics | undefined, caption: string, rows: [string, Evaluation][]) => string): string {
  const rows: [string, Evaluation][] = [[`SASRec v${versionId}`, p.test], ...Object.entries(p.baselines)];
  const valid = p.valid ? ` On validation (the purchase before it, ${p.valid.users.toLocaleString('en-US')} held-out users): NDCG@10 ${p.valid.model.full.ndcg[10]!.toFixed(4)}, HR@10 ${p.valid.model.full.hr[10]!.toFixed(4)}; the members were validated on this split.` : '';
  return `<h2>Next purchase</h2>
<p class="note">Each user's last purchase, ranked from every event before it (views and carts included); the training data stops before the purchase before it.${valid}</p>
${table((e) => e.full, `Next purchase, full ranking: ${exclusionPhrase(exclude)}`, rows)}
${targetSplit(rows)}`;
}

/** NDCG@10 and HR@10 of each row split by the held-out item: novel (not in the history) or repeat, with the users of each. */
function targetSplit(rows: readonly [string, Evaluation][]): string {
  const split = rows.filter(([, e]) => e.novel && e.repeat);
  if (split.length === 0) return '';
  const { novel, repeat } = split[0]![1];
  const cell = (m: RankingMetrics, k: 'ndcg' | 'hr'): string => `<td>${m.users > 0 ? m[k][10]!.toFixed(4) : '–'}</td>`;
  return `<table>
  <caption>By held-out item: novel (not in the history, ${novel!.users.toLocaleString('en-US')} users) and repeat (bought, carted or viewed before, ${repeat!.users.toLocaleString('en-US')} users), full ranking</caption>
  <thead><tr><th>model</th><th>NDCG@10 novel</th><th>HR@10 novel</th><th>NDCG@10 repeat</th><th>HR@10 repeat</th></tr></thead>
  <tbody>
${split.map(([name, e], i) => `    <tr${i === 0 ? ' class="model"' : ''}><th scope="row">${escapeHtml(name)}</th>${cell(e.novel!, 'ndcg')}${cell(e.novel!, 'hr')}${cell(e.repeat!, 'ndcg')}${cell(e.repeat!, 'hr')}</tr>`).join('\n')}
  </tbody>
</table>`;
}

/** The version on validation: the numbers settings are chosen on (test is reported, not chosen on). */
function validationNote(v: NonNullable<TrainingReport['valid']>): string {
  const f = (e: Evaluation): string => `NDCG@10 ${e.full.ndcg[10]!.toFixed(4)}, HR@10 ${e.full.hr[10]!.toFixed(4)}`;
  return `Full ranking of each user's second-to-last event on ${v.users.toLocaleString('en-US')} held-out validation users (not those the co-occurrence term was fitted on): ${f(v.model)}${v.network ? `; the attention network alone ${f(v.network)}` : ''}. Compare versions and choose settings on these; the test metrics below are reported, not chosen on.`;
}

/** The report's sentence on the co-occurrence term: its fit, or why it was left out. */
function cooccurrenceNote(c: NonNullable<TrainingReport['cooccurrence']>): string {
  const fit = `validation NDCG@10 ${c.networkValidNdcg10.toFixed(4)} for the network alone, ${c.validNdcg10.toFixed(4)} with the term, on ${c.users} users`;
  const cooccurrence =
    c.params.weight > 0
      ? `<b>Co-occurrence term</b>: the scores add weight ${c.params.weight} × log(1 + ${c.params.scale} × Σ ${c.params.decay}<sup>age</sup> cos(history item, item)), fitted on validation (${fit}).`
      : `<b>Co-occurrence term</b>: left out: the network alone was best on validation (${fit}).`;
  const r = c.repeat;
  if (!r) return cooccurrence;
  const repeatFit = `validation NDCG@10 ${r.withoutValidNdcg10.toFixed(4)} without it, ${r.validNdcg10.toFixed(4)} with it; ${r.repeatTargets} of ${r.users} held-out items repeat a history item the exclusion policy lets through`;
  return `${cooccurrence} ${
    r.repeatWeight > 0
      ? `<b>Repeat term</b>: each history item the policy lets through also gains ${r.repeatWeight} × log(1 + Σ ${r.repeatDecay}<sup>age</sup> of its occurrences), fitted on validation (${repeatFit}).`
      : `<b>Repeat term</b>: left out: it did not help on validation (${repeatFit}).`
  }`;
}

/** One member's values per epoch, its best epoch marked. */
interface Curve {
  readonly label: string;
  readonly colour: string;
  readonly xs: readonly number[];
  readonly ys: readonly number[];
  readonly markX: number;
}

/** An SVG line chart with y-axis ticks, one line per member (a legend when there are several), each best epoch marked. */
function lineChart(title: string, curves: readonly Curve[]): string {
  const width = 420;
  const height = 220;
  const left = 56;
  const right = 12;
  const top = 12;
  const bottom = 32;
  const allX = curves.flatMap((c) => c.xs);
  const finite = curves.flatMap((c) => c.ys).filter((y) => Number.isFinite(y));
  let low = Math.min(...finite);
  let high = Math.max(...finite);
  if (!Number.isFinite(low)) [low, high] = [0, 1];
  if (high === low) [low, high] = [low - 0.5, high + 0.5];
  const pad = (high - low) * 0.08;
  low -= pad;
  high += pad;
  const firstX = allX.length > 0 ? Math.min(...allX) : 1;
  const lastX = allX.length > 0 ? Math.max(...allX) : 1;
  const x = (v: number): number => left + (lastX === firstX ? (width - left - right) / 2 : ((v - firstX) / (lastX - firstX)) * (width - left - right));
  const y = (v: number): number => top + (1 - (v - low) / (high - low)) * (height - top - bottom);
  const ticks = [0, 0.25, 0.5, 0.75, 1].map((f) => low + f * (high - low));
  const epochs = [...new Set(allX)].sort((a, b) => a - b);
  const lines = curves.map((c) => {
    const points = c.xs.map((v, i) => `${x(v).toFixed(1)},${y(c.ys[i]!).toFixed(1)}`).join(' ');
    const markIndex = c.xs.indexOf(c.markX);
    const prefix = curves.length > 1 ? `${c.label}, ` : '';
    return `<polyline fill="none" stroke="${c.colour}" stroke-width="2" points="${points}"/>
    ${c.xs.map((v, i) => `<circle cx="${x(v).toFixed(1)}" cy="${y(c.ys[i]!).toFixed(1)}" r="3" fill="${c.colour}"><title>${escapeHtml(prefix)}epoch ${v}: ${c.ys[i]!.toFixed(4)}</title></circle>`).join('')}
    ${markIndex >= 0 ? `<circle cx="${x(c.markX).toFixed(1)}" cy="${y(c.ys[markIndex]!).toFixed(1)}" r="6" fill="none" stroke="#d9480f" stroke-width="2"><title>${escapeHtml(prefix)}best epoch ${c.markX}</title></circle>` : ''}`;
  });
  const legend = curves.length > 1 ? curves.map((c, i) => `<text x="${left + 8 + i * 80}" y="${top + 10}" fill="${c.colour}">— ${escapeHtml(c.label)}</text>`).join('') : '';
  return `<figure>
  <figcaption>${escapeHtml(title)}</figcaption>
  <svg width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" role="img" aria-label="${escapeHtml(title)}">
    ${ticks.map((t) => `<line x1="${left}" x2="${width - right}" y1="${y(t).toFixed(1)}" y2="${y(t).toFixed(1)}" stroke="#e3e6ec"/><text x="${left - 6}" y="${(y(t) + 4).toFixed(1)}" text-anchor="end">${formatTick(t)}</text>`).join('\n    ')}
    ${epochs.map((v) => `<text x="${x(v).toFixed(1)}" y="${height - bottom + 16}" text-anchor="middle">${v}</text>`).join('')}
    <text x="${(left + width - right) / 2}" y="${height - 2}" text-anchor="middle">epoch</text>
    ${lines.join('\n    ')}
    ${legend}
  </svg>
</figure>`;
}

function formatTick(value: number): string {
  const magnitude = Math.abs(value);
  return magnitude !== 0 && (magnitude < 0.01 || magnitude >= 1000) ? value.toExponential(1) : value.toFixed(magnitude < 1 ? 3 : 2);
}

export function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);
}
