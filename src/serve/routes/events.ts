import type { Router } from 'express';
import { buildEventRow, isBadLine, type EventField, type EventRow } from '../../data/import/event-row.js';
import { ingestEvents } from '../../data/ingest-events.js';
import { BULK_BATCH_EVENTS, markBulk } from '../bulk-governor.js';
import type { ServeContext } from '../context.js';
import { ProblemError } from '../problem.js';
import { EventsStoredSchema, reply } from '../responses.js';
import { EventInput, EventsBody, EventsEnvelope, EventsQuery, issuesOf, parse } from '../validation.js';

const FIELD_NAMES: Record<EventField, keyof EventInput> = {
  user_id: 'userId',
  session_id: 'sessionId',
  item_id: 'itemId',
  event_type: 'type',
  timestamp: 'timestamp',
  value: 'value',
  quantity: 'quantity',
  event_id: 'eventId',
  recommendation_id: 'recommendationId',
};

/** POST /v1/events: 1–1,000 events, stored all together or not at all. */
export function eventRoutes(router: Router, ctx: ServeContext): void {
  router.post('/events', ctx.auth.require('write'), async (req, res) => {
    const { dryRun } = parse(EventsQuery, req.query, 'query');
    // The whole batch in one pass when it is well shaped (the usual case: 75–140 µs
    // instead of 150–200 µs for 100 events as 100 safeParse calls); otherwise each
    // event is checked on its own, shape then meaning, so one response lists every bad event.
    const whole = EventsBody.safeParse(req.body);
    const events: unknown[] = whole.success ? whole.data.events : parse(EventsEnvelope, req.body, 'body').events;
    const now = Date.now();
    const rows: EventRow[] = [];
    const errors: { in: string; pointer: string; code?: string; message: string }[] = [];
    events.forEach((raw, i) => {
      let event: EventInput;
      if (whole.success) event = raw as EventInput;
      else {
        const shaped = EventInput.safeParse(raw);
        if (!shaped.success) {
          errors.push(...issuesOf(shaped.error, `/events/${i}`));
          return;
        }
        event = shaped.data;
      }
      const row = buildEventRow((field) => (field === 'timestamp' ? (event.timestamp ?? now) : event[FIELD_NAMES[field]]), i + 1, 'auto');
      if (!isBadLine(row)) {
        rows.push(row);
        return;
      }
      // Field-level messages start with the log column's name (event_type …); say the API's name (type …).
      const column = /^[a-z_]+/.exec(row.message)?.[0] as EventField | undefined;
      const field = column && column in FIELD_NAMES ? FIELD_NAMES[column] : undefined;
      errors.push({ in: 'body', pointer: `/events/${i}${field ? `/${field}` : ''}`, code: row.code, message: field ? row.message.replace(column!, field) : row.message });
    });
    if (errors.length > 0) {
      throw new ProblemError('VALIDATION_FAILED', `${errors[0]!.pointer}: ${errors[0]!.message}${errors.length > 1 ? ` (and ${errors.length - 1} more)` : ''}; no event was ${dryRun ? 'checked further' : 'stored'}`, {
        errors: errors.slice(0, 100),
      });
    }
    if (!dryRun && rows.length > BULK_BATCH_EVENTS) {
      // A bulk batch: stored once live requests leave room (at most ~2 s later); see src/serve/bulk-governor.ts.
      markBulk(res.locals);
      await ctx.bulk.admit(rows.length);
    }
    let result;
    try {
      result = await ingestEvents(ctx.store, rows, { strictCatalog: ctx.config.strictCatalog, eventTypes: ctx.config.eventTypes, notify: { from: ctx.replicaId }, dryRun });
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
    if (dryRun) {
      reply(res, EventsStoredSchema, { received: result.received, stored: result.stored, duplicates: result.duplicates, dryRun: true });
      return;
    }
    ctx.metrics.eventsIngested.inc({ outcome: 'stored' }, result.stored);
    ctx.metrics.eventsIngested.inc({ outcome: 'duplicate' }, result.duplicates);
    const users = new Set<string>();
    for (const row of rows) if (row.user !== null) users.add(row.user);
    ctx.recommender.invalidateUsers(users);
    // Items the batch named that the catalogue does not hold (created now, or by another replica) are read alone.
    await ctx.catalog.addItems(rows.map((row) => row.item));
    reply(res, EventsStoredSchema, { received: result.received, stored: result.stored, duplicates: result.duplicates });
  });
}
