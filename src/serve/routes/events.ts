import type { Router } from 'express';
import { buildEventRow, isBadLine, type EventField, type EventRow } from '../../data/import/event-row.js';
import { ingestEvents } from '../../data/ingest-events.js';
import type { ServeContext } from '../context.js';
import { ProblemError } from '../problem.js';
import { EventsBody, parse, type EventInput } from '../validation.js';

const FIELD_NAMES: Record<EventField, keyof EventInput> = {
  user_id: 'userId',
  session_id: 'sessionId',
  item_id: 'itemId',
  event_type: 'type',
  timestamp: 'timestamp',
  value: 'value',
  quantity: 'quantity',
  event_id: 'eventId',
};

/** POST /v1/events: 1–1,000 events, stored all together or not at all. */
export function eventRoutes(router: Router, ctx: ServeContext): void {
  router.post('/events', ctx.auth.require('write'), async (req, res) => {
    const { events } = parse(EventsBody, req.body, 'body');
    const now = Date.now();
    const rows: EventRow[] = [];
    const errors: { in: string; pointer: string; code: string; message: string }[] = [];
    events.forEach((event, i) => {
      const row = buildEventRow((field) => (field === 'timestamp' ? (event.timestamp ?? now) : event[FIELD_NAMES[field]]), i + 1, 'auto');
      if (isBadLine(row)) errors.push({ in: 'body', pointer: `/events/${i}`, code: row.code, message: row.message });
      else rows.push(row);
    });
    if (errors.length > 0) {
      throw new ProblemError('VALIDATION_FAILED', `${errors.length} of ${events.length} events are invalid (first: /events${errors[0]!.pointer.slice(7)}: ${errors[0]!.message}); none were stored`, {
        errors: errors.slice(0, 100),
      });
    }
    let result;
    try {
      result = await ingestEvents(ctx.store, rows, { strictCatalog: ctx.config.strictCatalog, eventTypes: ctx.config.eventTypes });
    } catch (error) {
      const details = (error as { details?: { errors?: { index: number; code: string; message: string }[] } }).details;
      if (details?.errors) {
        // Map the store's row indices to JSON pointers into the request.
        throw new ProblemError('VALIDATION_FAILED', (error as Error).message, {
          errors: details.errors.map((e) => ({ in: 'body', pointer: `/events/${e.index}`, code: e.code, message: e.message })),
        });
      }
      throw error;
    }
    ctx.metrics.eventsIngested.inc({ outcome: 'stored' }, result.stored);
    ctx.metrics.eventsIngested.inc({ outcome: 'duplicate' }, result.duplicates);
    ctx.recommender.invalidateUsers(new Set(rows.flatMap((r) => (r.user === null ? [] : [r.user]))));
    if (result.created.items > 0) await ctx.catalog.reload();
    res.json({ received: result.received, stored: result.stored, duplicates: result.duplicates });
  });
}
