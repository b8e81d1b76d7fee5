#!/usr/bin/env -S npx tsx
import { availableParallelism } from 'node:os';
import { integerFlag, runJob, type FlagSpec, type JobSpec } from '../src/cli/job.js';
import { createProgress, formatCount, type Progress } from '../src/cli/progress.js';
import { DEFAULT_DATABASE_URL } from '../src/config/database-url.js';
import { openStore } from '../src/data/store.js';
import { AppError } from '../src/errors.js';
import { exportRecommendations, type ExportFormat } from '../src/serve/batch-export.js';

const spec = {
  name: 'jobs/export',
  summary: "write every user's recommendations (the active version, with filters and rules applied) to a file or a table",
  usage: 'npm run export -- --output <file|name> [--users all|<file>] [--k 20] [--format jsonl|csv|table] [options]',
  flags: {
    users: { type: 'string', value: 'all|file', default: 'all', description: 'Every user (in the order they were first seen), or a file of user ids, one per line' },
    k: { type: 'string', value: 'n', default: '20', description: 'Recommendations per user (1-100)' },
    format: { type: 'string', value: 'name', default: 'jsonl', choices: ['jsonl', 'csv', 'table'], description: 'jsonl: a line per user; csv: user_id,rank,item,probability,score; table: rows of recommendation_exports named --output' },
    output: { type: 'string', value: 'file|name', description: 'The file to write (jsonl, csv), or the export\'s name in recommendation_exports (table); required' },
    overwrite: { type: 'boolean', default: false, description: 'Replace an existing output (a file, or the rows of an export with this name)' },
    resume: { type: 'boolean', default: false, description: 'Continue an interrupted export of the same users, k, format and rules after the last user it stored' },
    exclude: { type: 'string', value: 'policy', default: 'purchased', choices: ['purchased', 'seen', 'none'], description: "Each user's history items to leave out, as the API" },
    category: { type: 'string', value: 'name', description: 'Only items of this category' },
    filter: { type: 'string', value: 'rule', description: 'Only items this rule holds for, e.g. \'stock > 0 AND brand IN ("a","b")\' (docs/merchandising.md)' },
    boost: { type: 'string', value: 'rules', description: 'Boost rules, e.g. \'1.5 IF tags = "promo"; 0.2 IF stock = 0\'' },
    'max-per': { type: 'string', value: 'name:n', description: 'Diversity: at most n items with the same value of category or a property, e.g. category:2' },
    workers: { type: 'string', value: 'n', description: 'Inference worker threads (default: the cores)' },
    'database-url': { type: 'string', value: 'url', description: `Database (default: $DATABASE_URL, else ${DEFAULT_DATABASE_URL})` },
    json: { type: 'boolean', default: false, description: 'Print the report as JSON on stdout' },
    quiet: { type: 'boolean', short: 'q', default: false, description: 'No progress output' },
  },
  details: `
The export runs the API's serving path without HTTP: an exported list is what GET /v1/users/{id}/recommendations
would answer with the same parameters (popular items for users the model cannot serve). It streams: memory
stays bounded whatever the number of users. Ctrl-C stops it at the next chunk; --resume continues from there.
An existing output is refused unless --overwrite or --resume is given.`,
} satisfies JobSpec<Record<string, FlagSpec>>;

await runJob(spec, async ({ flags }) => {
  if (flags.output === undefined) throw new AppError('USAGE', '--output <file|name> is required (see --help)');
  if (flags.overwrite && flags.resume) throw new AppError('USAGE', 'give --overwrite or --resume, not both');
  const k = integerFlag('k', flags.k, 1, 100);
  const workers = flags.workers === undefined ? availableParallelism() : integerFlag('workers', flags.workers, 1, 256);
  const store = openStore(flags['database-url'] ?? process.env.DATABASE_URL);
  const abort = new AbortController();
  let interruptedAt = 0;
  const interrupt = (): void => {
    // A terminal's Ctrl-C reaches this process twice under npx/tsx (directly, and relayed by tsx): only a
    // second press, a second later or more, quits without waiting.
    if (abort.signal.aborted) {
      if (performance.now() - interruptedAt > 1_000) process.exit(130);
      return;
    }
    interruptedAt = performance.now();
    process.stderr.write('\nstopping at the next chunk (Ctrl-C again to quit at once) …\n');
    abort.abort();
  };
  process.on('SIGINT', interrupt);
  // The bar starts with the first chunk, when the total is known (for --users all).
  let progress: Progress | undefined;
  const log = (line: string): void => (progress ? progress.log(line) : void (flags.quiet || process.stderr.write(`${line}\n`)));
  try {
    const report = await exportRecommendations(store, {
      users: flags.users === 'all' ? 'all' : { file: flags.users },
      k,
      format: flags.format as ExportFormat,
      output: flags.output,
      overwrite: flags.overwrite,
      resume: flags.resume,
      filters: { exclude: flags.exclude as 'purchased' | 'seen' | 'none', category: flags.category, filter: flags.filter, boost: flags.boost, maxPer: flags['max-per'] },
      workers,
      log,
      onProgress: (done, total) => {
        progress ??= createProgress({ label: 'export', total: total ?? 0, unit: 'users', quiet: flags.quiet });
        progress.update(done, `${formatCount(done)}${total === undefined ? '' : ` of ${formatCount(total)}`} users`);
      },
      signal: abort.signal,
    });
    progress?.finish();
    progress = undefined;
    if (flags.json) process.stdout.write(`${JSON.stringify(report, null, 2)}\n`);
    else
      process.stderr.write(
        `${report.interrupted ? 'interrupted: ' : ''}${formatCount(report.users)} users exported to ${report.output} in ${report.seconds.toFixed(1)} s (${formatCount(report.usersPerSecond)} users/s)` +
          `${report.skippedBefore > 0 ? `, after ${formatCount(report.skippedBefore)} already there` : ''}${report.interrupted ? '; run again with --resume to finish' : ''}\n`,
      );
    if (report.interrupted) process.exitCode = 130;
  } finally {
    progress?.finish();
    process.off('SIGINT', interrupt);
    await store.close();
  }
});
