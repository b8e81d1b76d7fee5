import { BUILTIN_EVENT_TYPES } from '../data/import/event-types.js';
import { AppError } from '../errors.js';
import type { CatalogItem } from '../data/serving-reader.js';
import type { ServedModel } from '../model/served-model.js';
import { explain, type ExplainedEvent } from './explain.js';
import { attentionReport, type AttentionReport, type ReportEvent } from './report.js';

const PURCHASE = BUILTIN_EVENT_TYPES.purchase!;

export interface InspectOptions {
  readonly k: number;
  /** External id of the item leave-one-out explains (default: the top prediction). */
  readonly target?: string | undefined;
  /** History items left out of the predictions. */
  readonly exclude: 'purchased' | 'seen' | 'none';
}

export interface CatalogLookup {
  byInternalId(id: number): CatalogItem | undefined;
  byExternalId(externalId: string): CatalogItem | undefined;
}

/** One history through explain() into the report the API, the job and the page share. */
export function inspectHistory(model: ServedModel, catalog: CatalogLookup, typeNames: ReadonlyMap<number, string>, events: readonly ExplainedEvent[], options: InspectOptions): AttentionReport {
  let target: number | undefined;
  if (options.target !== undefined) {
    const entry = catalog.byExternalId(options.target);
    if (!entry) throw new AppError('ITEM_NOT_FOUND', `target item '${options.target}' is not in the catalogue`);
    target = model.vocabulary.indexOf(entry.id);
    if (target === 0) throw new AppError('ITEM_NOT_IN_MODEL', `target item '${options.target}' is newer than model version ${model.version}`, { modelVersion: model.version });
  }
  const excluded = new Set(options.exclude === 'none' ? [] : events.filter((e) => options.exclude === 'seen' || e.type === PURCHASE).map((e) => e.itemId));
  const explanation = explain(model, events, {
    k: options.k,
    ...(target !== undefined && { target }),
    keep: (index) => {
      const entry = catalog.byInternalId(model.vocabulary.itemAt(index));
      return entry !== undefined && entry.active && !excluded.has(entry.id);
    },
  });
  if (!explanation) throw new AppError('NO_USABLE_HISTORY', `none of the ${events.length} events is on an item model version ${model.version} knows`, { modelVersion: model.version });
  const reportEvents: ReportEvent[] = events.map((e) => {
    const entry = catalog.byInternalId(e.itemId);
    return {
      item: entry?.externalId ?? String(e.itemId),
      title: entry?.title ?? null,
      category: entry?.category ?? null,
      type: typeNames.get(e.type) ?? 'unknown',
      timestamp: e.ts === null ? null : new Date(e.ts).toISOString(),
    };
  });
  const describe = (index: number): { item: string; title: string | null; category: string | null } => {
    const entry = catalog.byInternalId(model.vocabulary.itemAt(index));
    return { item: entry?.externalId ?? `#${index}`, title: entry?.title ?? null, category: entry?.category ?? null };
  };
  return attentionReport(explanation, reportEvents, describe, model.version);
}
