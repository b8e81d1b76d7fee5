#!/usr/bin/env -S npx tsx
import { integerFlag, runJob, type JobSpec } from '../src/cli/job.js';
import { createProgress, formatCount, type Progress } from '../src/cli/progress.js';
import { AppError } from '../src/errors.js';
import { importEvents, type ImportReport } from '../src/data/import/import-events.js';
import { DEFAULT_SASREC, detectFormat, type EventFormat } from '../src/data/import/sources.js';
import { parseTimestamp, FieldError, type TimeUnit } from '../src/data/import/fields.js';
import type { EventTypePolicy } from '../src/data/import/event-types.js';
import { migrate } from '../src/data/migrate.js';
import { openStore } from '../src/data/store.js';
import { DEFAULT_DATABASE_URL } from '../src/config/database-url.js';

const spec = {
  name: 'jobs/import',
  summary: 'load an event log and/or an item catalogue into the event store',
  usage: 'npm run import -- [options] [EVENT_FILE]',
  positionals: { max: 1 },
  flags: {
    format: { type: 'string', value: 'name', choices: ['sasrec', 'csv', 'jsonl'], description: 'Event file format; by default from the extension (.txt sasrec, .csv/.tsv csv, .jsonl/.ndjson jsonl)' },
    items: { type: 'string', value: 'file', description: 'Item catalogue CSV (item_id, title, category, price, active, properties as a JSON object), applied before the events' },
    'skip-bad': { type: 'boolean', default: false, description: 'Skip bad lines and report them at the end, instead of stopping at the first one with nothing imported' },
    'event-types': { type: 'string', value: 'policy', choices: ['register', 'strict'], default: 'register', description: 'Unknown event types: register them as new types, or reject the line' },
    'time-unit': { type: 'string', value: 'unit', choices: ['auto', 's', 'ms'], default: 'auto', description: 'Unit of numeric timestamps; auto reads values below 1e11 as seconds' },
    delimiter: { type: 'string', value: 'char', description: 'CSV field delimiter (default , or tab for .tsv)' },
    'sasrec-base-time': { type: 'string', value: 'iso', default: new Date(DEFAULT_SASREC.baseTimeMs).toISOString(), description: 'SASRec format: timestamp of each user\'s first event' },
    'sasrec-step': { type: 'string', value: 'seconds', default: String(DEFAULT_SASREC.stepMs / 1000), description: 'SASRec format: seconds between a user\'s consecutive events' },
    'sasrec-event-type': { type: 'string', value: 'type', default: DEFAULT_SASREC.eventType, description: 'SASRec format: event type of every line' },
    'database-url': { type: 'string', value: 'url', description: `Database (default: $DATABASE_URL, else ${DEFAULT_DATABASE_URL})` },
    'no-migrate': { type: 'boolean', default: false, description: 'Do not apply pending migrations first' },
    json: { type: 'boolean', default: false, description: 'Print the report as JSON on stdout' },
    quiet: { type: 'boolean', short: 'q', default: false, description: 'No progress output' },
  },
  details: `
Event files:
  sasrec  "user item" per line, each user's lines consecutive and oldest first (timestamps synthesised)
  csv     header with user_id and/or session_id, item_id, event_type, timestamp; optional value, quantity, event_id
  jsonl   one JSON object per line with the same keys
Timestamps are ISO 8601 (no zone = UTC) or numbers (see --time-unit).
Event types: view, cart, purchase (aliases such as addtocart, transaction) or custom names.

The whole import is one transaction: a bad line stops it with FILE:LINE and the reason, and nothing is
stored. Importing the same events again stores nothing new: an event is identified by its event_id and by
its content (user, session, item, type, timestamp).

Examples:
  npm run import -- samples/amazon-games.txt
  npm run import -- --items catalog.csv events.csv --skip-bad
  DATABASE_URL=postgresql://localhost/attnrec npm run import -- events.jsonl`,
} satisfies JobSpec<Record<string, import('../src/cli/job.js').FlagSpec>>;

await runJob(spec, async ({ flags, positionals }) => {
  const eventFile = positionals[0];
  if (!eventFile && !flags.items) throw new AppError('USAGE', 'give an event file, --items, or both (see --help)');
  const base = parseTimestamp(flags['sasrec-base-time'], 'ms');
  if (base instanceof FieldError) throw new AppError('USAGE', `--sasrec-base-time: ${base.message}`);
  const stepSeconds = integerFlag('sasrec-step', flags['sasrec-step'], 1, 366 * 86_400);

  const store = openStore(flags['database-url'] ?? process.env.DATABASE_URL);
  try {
    if (!flags['no-migrate']) await migrate(store);
    let progress: Progress | undefined;
    const report = await importEvents(store, {
      ...(eventFile && {
        events: {
          path: eventFile,
          format: (flags.format as EventFormat | undefined) ?? detectFormat(eventFile),
          timeUnit: flags['time-unit'] as TimeUnit,
          ...(flags.delimiter !== undefined && { delimiter: flags.delimiter }),
          sasrec: { baseTimeMs: base, stepMs: stepSeconds * 1000, eventType: flags['sasrec-event-type'] },
        },
      }),
      ...(flags.items && { catalogPath: flags.items }),
      skipBad: flags['skip-bad'],
      eventTypes: flags['event-types'] as EventTypePolicy,
      onProgress: (p) => {
        if (p.bytesRead === 0) progress = createProgress({ label: 'import', total: p.bytesTotal, unit: 'bytes', quiet: flags.quiet || flags.json });
        else progress?.update(p.bytesRead, `${formatCount(p.eventsRead)} events`);
      },
    });
    progress?.finish();
    process.stdout.write(flags.json ? `${JSON.stringify({ database: store.provider, ...report }, null, 2)}\n` : describe(report));
  } finally {
    await store.close();
  }
});

function describe(report: ImportReport): string {
  const lines: string[] = [];
  if (report.catalog) {
    lines.push(`catalogue ${report.catalog.file}: ${formatCount(report.catalog.rows)} items, ${formatCount(report.catalog.inserted)} new, ${formatCount(report.catalog.updated)} updated`);
  }
  if (report.events) {
    const e = report.events;
    lines.push(
      `events ${e.file} (${e.format}): ${formatCount(e.read)} read, ${formatCount(e.inserted)} new, ${formatCount(e.duplicates)} duplicates ` +
        `in ${report.seconds.toFixed(1)} s (${formatCount(report.eventsPerSecond)} events/s)`,
    );
  }
  const c = report.created;
  lines.push(`created ${formatCount(c.users)} users, ${formatCount(c.items)} items, ${formatCount(c.sessions)} sessions${c.eventTypes.length ? `, event types ${c.eventTypes.join(', ')}` : ''}`);
  if (report.skipped.count > 0) {
    lines.push(`skipped ${formatCount(report.skipped.count)} bad lines${report.skipped.count > report.skipped.examples.length ? ` (first ${report.skipped.examples.length} below)` : ''}:`);
    for (const bad of report.skipped.examples) lines.push(`  ${bad.file}:${bad.line}: ${bad.message} [${bad.code}]`);
  }
  return `${lines.join('\n')}\n`;
}
