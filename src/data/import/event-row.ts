import { normaliseEventType } from './event-types.js';
import { FieldError, parseExternalId, parseOptionalNumber, parseOptionalQuantity, parseRecommendationId, parseTimestamp, type TimeUnit } from './fields.js';

/** One validated event as read from a log, still in the shop's external ids. */
export interface EventRow {
  /** 1-based line of the source file (or position in an API batch). */
  readonly line: number;
  readonly user: string | null;
  readonly session: string | null;
  readonly item: string;
  /** Normalised event-type name (see normaliseEventType). */
  readonly type: string;
  /** Milliseconds since the epoch, UTC. */
  readonly ts: number;
  readonly value: number | null;
  readonly quantity: number | null;
  readonly eventId: string | null;
  /**
   * The recommendationId of the response that showed the item, when the shop
   * sends it (explicit attribution; src/data/attributions.ts), lowercase.
   */
  readonly recommendationId: string | null;
}

/** A line that failed validation: where, a stable code, and a reason for people. */
export interface BadLine {
  readonly line: number;
  readonly code: string;
  readonly message: string;
}

/** The columns of an event log (CSV header or JSON keys). */
export const EVENT_FIELDS = ['user_id', 'session_id', 'item_id', 'event_type', 'timestamp', 'value', 'quantity', 'event_id', 'recommendation_id'] as const;
export type EventField = (typeof EVENT_FIELDS)[number];

/** Validates one event given a way to read its fields; never throws. */
export function buildEventRow(get: (field: EventField) => unknown, line: number, timeUnit: TimeUnit): EventRow | BadLine {
  // Straight-line code without helper closures: this runs once per line of multi-million-line logs.
  const user = parseExternalId(get('user_id'), 'user_id');
  if (user instanceof FieldError) return badLine(line, user);
  const session = parseExternalId(get('session_id'), 'session_id');
  if (session instanceof FieldError) return badLine(line, session);
  if (user === null && session === null) return { line, code: 'MISSING_OWNER', message: 'user_id and session_id are both empty: an event needs one of them' };
  const item = parseExternalId(get('item_id'), 'item_id');
  if (item instanceof FieldError) return badLine(line, item);
  if (item === null) return { line, code: 'MISSING_ITEM', message: 'item_id is empty' };
  const type = normaliseEventType(get('event_type'));
  if (type instanceof FieldError) return badLine(line, type);
  const ts = parseTimestamp(get('timestamp'), timeUnit);
  if (ts instanceof FieldError) return badLine(line, ts);
  const value = parseOptionalNumber(get('value'), 'value');
  if (value instanceof FieldError) return badLine(line, value);
  const quantity = parseOptionalQuantity(get('quantity'));
  if (quantity instanceof FieldError) return badLine(line, quantity);
  const eventId = parseExternalId(get('event_id'), 'event_id');
  if (eventId instanceof FieldError) return badLine(line, eventId);
  const recommendationId = parseRecommendationId(get('recommendation_id'));
  if (recommendationId instanceof FieldError) return badLine(line, recommendationId);
  return { line, user, session, item, type, ts, value, quantity, eventId, recommendationId };
}

function badLine(line: number, error: FieldError): BadLine {
  return { line, code: error.code, message: error.message };
}

export function isBadLine(row: EventRow | BadLine): row is BadLine {
  return 'code' in row;
}
