import { AppError } from '../errors.js';
import { FieldError, parseTimestamp } from './import/fields.js';

/**
 * A `--since` flag: an ISO 8601 instant (2024-01-01) or a span back from
 * `now` (90d, 12h). Anything else is a USAGE error naming the flag.
 */
export function parseSince(raw: string, flag = '--since', now = Date.now()): Date {
  const span = /^(\d+)([dh])$/.exec(raw.trim());
  if (span) return new Date(now - Number(span[1]) * (span[2] === 'd' ? 86_400_000 : 3_600_000));
  const ms = parseTimestamp(raw);
  if (ms instanceof FieldError) throw new AppError('USAGE', `${flag} must be an ISO 8601 date or a span such as 90d; got '${raw}'`);
  return new Date(ms);
}
