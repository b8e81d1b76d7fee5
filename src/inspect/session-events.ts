import { normaliseEventType } from '../data/import/event-types.js';
import { FieldError, parseTimestamp } from '../data/import/fields.js';
import type { ExplainedEvent } from './explain.js';
import type { CatalogLookup } from './inspect-history.js';

/**
 * An inline session (`{item, type?, timestamp?}` per event) in the store's
 * ids, for the attention API and `jobs/inspect --session-file` alike: types
 * normalised (default view), timestamps parsed when given, items the
 * catalogue does not know counted and left out, bad fields listed.
 */
export function sessionEvents(
  raw: readonly { readonly item: string | number; readonly type?: unknown; readonly timestamp?: unknown }[],
  catalog: CatalogLookup,
  typeIds: ReadonlyMap<string, number>,
): { events: ExplainedEvent[]; unknownItems: number; errors: { index: number; field: 'type' | 'timestamp'; message: string }[] } {
  const events: ExplainedEvent[] = [];
  const errors: { index: number; field: 'type' | 'timestamp'; message: string }[] = [];
  let unknownItems = 0;
  raw.forEach((e, index) => {
    const item = catalog.byExternalId(String(e.item));
    const type = normaliseEventType(e.type ?? 'view');
    const ts = e.timestamp === undefined ? null : parseTimestamp(e.timestamp);
    if (type instanceof FieldError) errors.push({ index, field: 'type', message: type.message });
    if (ts instanceof FieldError) errors.push({ index, field: 'timestamp', message: ts.message });
    if (!item) unknownItems++;
    else if (!(type instanceof FieldError) && !(ts instanceof FieldError)) events.push({ itemId: item.id, type: typeIds.get(type) ?? 0, ts });
  });
  return { events, unknownItems, errors };
}
