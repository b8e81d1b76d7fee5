/**
 * Field-level validation shared by every import format and, later, the HTTP
 * ingestion route. Each parser returns a value or a `FieldError` (never
 * throws), so a reader can attach the file and line to the reason.
 */

export class FieldError {
  constructor(
    /** Stable machine-readable reason, e.g. BAD_TIMESTAMP. */
    readonly code: string,
    readonly message: string,
  ) {}
}

export const MAX_EXTERNAL_ID_LENGTH = 256;

/** A shop's id for a user, session, item or event: a non-empty string without control characters. */
export function parseExternalId(raw: unknown, field: string): string | null | FieldError {
  if (raw === undefined || raw === null) return null;
  let value: string;
  if (typeof raw === 'string') value = raw.trim();
  else if (typeof raw === 'number' && Number.isSafeInteger(raw)) value = String(raw);
  else return new FieldError('BAD_ID', `${field} must be a string or an integer`);
  if (value === '') return null;
  if (value.length > MAX_EXTERNAL_ID_LENGTH) return new FieldError('BAD_ID', `${field} is longer than ${MAX_EXTERNAL_ID_LENGTH} characters`);
  // eslint-disable-next-line no-control-regex
  if (/[\u0000-\u001f\u007f]/.test(value)) return new FieldError('BAD_ID', `${field} contains control characters`);
  return value;
}

export type TimeUnit = 'auto' | 's' | 'ms';

const ISO_8601 = /^(\d{4})-(\d{2})-(\d{2})(?:[T ](\d{2}):(\d{2})(?::(\d{2})(?:[.,](\d+))?)?)?\s*(Z|[+-]\d{2}(?::?\d{2})?)?$/i;
/** Year 9999, the largest instant both SQLite and PostgreSQL round-trip through Prisma. */
const MAX_MS = 253_402_300_799_999;

/**
 * Milliseconds since the epoch from an ISO 8601 string (no zone = UTC) or a
 * number. With unit 'auto' a number below 1e11 is seconds, otherwise
 * milliseconds (1e11 s would be the year 5138; 1e11 ms is March 1973).
 */
export function parseTimestamp(raw: unknown, unit: TimeUnit = 'auto'): number | FieldError {
  if (raw === undefined || raw === null || raw === '') return new FieldError('MISSING_TIMESTAMP', 'timestamp is missing');
  let ms: number;
  if (typeof raw === 'number' || (typeof raw === 'string' && /^\s*-?\d+(\.\d+)?\s*$/.test(raw))) {
    const n = typeof raw === 'number' ? raw : Number(raw);
    if (!Number.isFinite(n)) return new FieldError('BAD_TIMESTAMP', `timestamp ${String(raw)} is not a finite number`);
    const seconds = unit === 's' || (unit === 'auto' && Math.abs(n) < 1e11);
    ms = Math.round(seconds ? n * 1000 : n);
  } else if (typeof raw === 'string') {
    const parsed = parseIso8601(raw.trim());
    if (parsed === null) return new FieldError('BAD_TIMESTAMP', `timestamp '${truncate(raw)}' is neither ISO 8601 nor a number`);
    if (Number.isNaN(parsed)) return new FieldError('BAD_TIMESTAMP', `timestamp '${truncate(raw)}' is not a valid date`);
    ms = parsed;
  } else {
    return new FieldError('BAD_TIMESTAMP', 'timestamp must be a string or a number');
  }
  if (ms < 0 || ms > MAX_MS) return new FieldError('BAD_TIMESTAMP', `timestamp ${truncate(String(raw))} is outside 1970–9999`);
  return ms;
}

/**
 * Milliseconds from an ISO 8601 date or date-time; null when the text is not
 * ISO 8601, NaN when it is but names no real instant (2024-02-30, 25:00).
 * Computed with Date.UTC from the parts: Date.parse would roll invalid dates
 * over, and is slower on the millions of lines of a log.
 */
export function parseIso8601(text: string): number | null {
  const m = ISO_8601.exec(text);
  if (!m) return null;
  const [, y, mo, d, h = '0', mi = '0', s = '0', frac = '', zone = 'Z'] = m;
  const year = +y!;
  const month = +mo!;
  const day = +d!;
  const hour = +h;
  const minute = +mi;
  const second = +s;
  if (month < 1 || month > 12 || day < 1 || day > daysInMonth(year, month) || hour > 23 || minute > 59 || second > 59) return NaN;
  const millis = frac === '' ? 0 : +(frac + '00').slice(0, 3);
  let offsetMinutes = 0;
  if (zone !== 'Z' && zone !== 'z') {
    const sign = zone[0] === '-' ? -1 : 1;
    const digits = zone.slice(1).replace(':', '');
    const oh = +digits.slice(0, 2);
    const om = digits.length > 2 ? +digits.slice(2, 4) : 0;
    if (oh > 23 || om > 59) return NaN;
    offsetMinutes = sign * (oh * 60 + om);
  }
  // Date.UTC maps years 0–99 to 1900–1999; setUTCFullYear does not.
  const date = new Date(Date.UTC(2000, month - 1, day, hour, minute, second, millis));
  date.setUTCFullYear(year);
  return date.getTime() - offsetMinutes * 60_000;
}

function daysInMonth(year: number, month: number): number {
  if (month === 2) return year % 4 === 0 && (year % 100 !== 0 || year % 400 === 0) ? 29 : 28;
  return month === 4 || month === 6 || month === 9 || month === 11 ? 30 : 31;
}

/** An optional finite number (empty = absent). */
export function parseOptionalNumber(raw: unknown, field: string): number | null | FieldError {
  if (raw === undefined || raw === null || raw === '') return null;
  const n = typeof raw === 'number' ? raw : typeof raw === 'string' && raw.trim() !== '' ? Number(raw) : NaN;
  if (!Number.isFinite(n)) return new FieldError('BAD_NUMBER', `${field} '${truncate(String(raw))}' is not a number`);
  return n;
}

/** An optional positive integer quantity (empty = absent). */
export function parseOptionalQuantity(raw: unknown): number | null | FieldError {
  const n = parseOptionalNumber(raw, 'quantity');
  if (n === null || n instanceof FieldError) return n;
  if (!Number.isInteger(n) || n < 1 || n > 2_147_483_647) return new FieldError('BAD_NUMBER', `quantity ${n} is not a positive integer`);
  return n;
}

/** A UUID as RFC 9562 writes it (versions 1–8, the RFC variant), any case: what the API's zod schema accepts too. */
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[1-8][0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/i;

/**
 * The optional recommendationId an event may carry (explicit attribution): a
 * UUID, returned lowercase (the server writes its ids lowercase); empty = none.
 */
export function parseRecommendationId(raw: unknown): string | null | FieldError {
  if (raw === undefined || raw === null) return null;
  if (typeof raw !== 'string') return new FieldError('BAD_RECOMMENDATION_ID', 'recommendation_id must be a string (a UUID)');
  const value = raw.trim();
  if (value === '') return null;
  if (!UUID.test(value)) return new FieldError('BAD_RECOMMENDATION_ID', `recommendation_id '${truncate(value)}' is not a UUID`);
  return value.toLowerCase();
}

export function truncate(text: string, max = 40): string {
  return text.length > max ? `${text.slice(0, max)}…` : text;
}
