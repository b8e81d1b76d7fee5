import { Cron } from 'croner';
import { AppError } from '../errors.js';

/** Five fields, each one croner accepts: the syntax both the in-process cron and graphile-worker's crontab read. */
export function validateCron(expression: string): void {
  const fields = expression.trim().split(/\s+/);
  const problem = (why: string) => new AppError('USAGE', `--retrain-schedule '${expression}' ${why}`);
  if (fields.length !== 5) throw problem(`must have five fields (minute hour day-of-month month day-of-week), e.g. '0 3 * * *' for 03:00 every day; it has ${fields.length}`);
  if (!fields.every((f) => /^[0-9*/,-]+$/.test(f))) throw problem('may use only digits and * / , - (no names or @-shortcuts, which the PostgreSQL job queue does not read)');
  try {
    new Cron(expression, { paused: true }).stop();
  } catch (error) {
    throw problem(`is not a valid cron expression: ${(error as Error).message}`);
  }
}
