import type { Explanation } from './explain.js';
import type { AttentionReport, ReportEvent, ReportItem } from './report-schema.js';

// The report's shape is declared once, as a zod schema (the API documents its responses with it).
export type { AttentionReport, ReportEvent, ReportItem } from './report-schema.js';

/*
 * `attention.weights` has BertViz's shape: per layer [1, heads, T, T], row = the position
 * attending; positions index `history`. An ensemble's layers come member by member:
 * layers = members × blocks, member m's block b at m · blocks + b.
 */

/** Six significant decimals are plenty for weights and halve the JSON. */
const r6 = (x: number): number => Math.round(x * 1e6) / 1e6;

export function attentionReport(explanation: Explanation, events: readonly ReportEvent[], describe: (index: number) => ReportItem, modelVersion: number): AttentionReport {
  const T = explanation.positions.length;
  const { heads } = explanation;
  return {
    modelVersion,
    history: explanation.positions.map((i, position) => ({ position, ...events[i]! })),
    ignored: explanation.ignored,
    predictions: explanation.predictions.map((p) => ({ ...describe(p.index), probability: p.probability, score: r6(p.score) })),
    target: { ...describe(explanation.target.index), probability: explanation.target.probability },
    attention: {
      members: explanation.members,
      blocks: explanation.blocks,
      layers: explanation.layers.length,
      heads,
      length: T,
      weights: explanation.layers.map((layer) => [
        Array.from({ length: heads }, (_, h) => Array.from({ length: T }, (_, t) => Array.from(layer.subarray(h * T * T + t * T, h * T * T + (t + 1) * T), r6))),
      ]),
    },
    rollout: Array.from(explanation.rollout, r6),
    leaveOneOut: explanation.leaveOneOut.map((x, position) => (x ? { position, without: x.without, drop: x.drop } : null)),
  };
}

/**
 * The report as one tidy CSV table (pandas/R friendly): a `kind` column says
 * what a row is — attention (member, layer within it, head, query, key, weight), rollout and
 * leave_one_out (key = history position, value), prediction (item, value =
 * probability) — and item columns name the events.
 */
export function reportCsv(report: AttentionReport): string {
  const lines = ['kind,member,layer,head,query_position,key_position,query_item,key_item,value'];
  const item = (p: number): string => csvField(report.history[p]!.item);
  const { blocks } = report.attention;
  report.attention.weights.forEach((layer, l) =>
    layer[0]!.forEach((head, h) =>
      head.forEach((row, q) => row.forEach((w, k) => k <= q && lines.push(`attention,${Math.floor(l / blocks)},${l % blocks},${h},${q},${k},${item(q)},${item(k)},${w}`))),
    ),
  );
  const last = report.history.length - 1;
  report.rollout.forEach((w, k) => lines.push(`rollout,,,,${last},${k},${item(last)},${item(k)},${w}`));
  report.leaveOneOut.forEach((x, k) => lines.push(`leave_one_out,,,,,${k},,${item(k)},${x ? x.drop : ''}`));
  for (const p of report.predictions) lines.push(`prediction,,,,,,,${csvField(p.item)},${p.probability}`);
  return `${lines.join('\n')}\n`;
}

function csvField(value: string): string {
  return /[",\n\r]/.test(value) ? `"${value.replace(/"/g, '""')}"` : value;
}
