#!/usr/bin/env -S npx tsx
import { readFileSync, writeFileSync } from 'node:fs';
import { integerFlag, runJob, type FlagSpec, type JobSpec } from '../src/cli/job.js';
import { createProgress } from '../src/cli/progress.js';
import { DEFAULT_DATABASE_URL } from '../src/config/database-url.js';
import { loadSequences } from '../src/data/sequences.js';
import { servingReader } from '../src/data/serving-reader.js';
import { openStore } from '../src/data/store.js';
import { AppError } from '../src/errors.js';
import { aggregateAttention, aggregateCsv } from '../src/inspect/aggregate.js';
import type { ExplainedEvent } from '../src/inspect/explain.js';
import { reportHtml } from '../src/inspect/export-html.js';
import { inspectHistory } from '../src/inspect/inspect-history.js';
import { reportCsv } from '../src/inspect/report.js';
import { sessionEvents } from '../src/inspect/session-events.js';
import { BACKEND_PREFERENCES, selectBackend, type BackendPreference } from '../src/model/backend.js';
import { Random } from '../src/random.js';
import { CatalogCache } from '../src/serve/catalog-cache.js';
import { ServedModel } from '../src/model/served-model.js';

const spec = {
  name: 'jobs/inspect',
  summary: 'export what a prediction attended to (per layer and head, rollout, leave-one-out), or attention averaged over many users',
  usage: 'npm run inspect -- (--user <id> | --session-file <file> | --sample <n>) [options]',
  flags: {
    user: { type: 'string', value: 'id', description: "A stored user's history" },
    'session-file': { type: 'string', value: 'file', description: 'A session as JSON: [{"item", "type", "timestamp"?}, …] (or {"events": […]})' },
    sample: { type: 'string', value: 'n', description: 'Aggregate over n users drawn at random: mean attention by recency and by event type, per layer and head' },
    format: { type: 'string', value: 'name', default: 'json', choices: ['json', 'csv', 'html'], description: 'Output format (html: a self-contained page; not with --sample)' },
    out: { type: 'string', value: 'file', description: 'Write here (default: standard output)' },
    model: { type: 'string', value: 'version', description: 'Model version (default: the active one)' },
    k: { type: 'string', value: 'n', default: '10', description: 'Predictions to list' },
    target: { type: 'string', value: 'item', description: 'Item whose probability leave-one-out explains (default: the top prediction)' },
    exclude: { type: 'string', value: 'policy', default: 'none', choices: ['none', 'purchased', 'seen'], description: 'History items left out of the predictions' },
    seed: { type: 'string', value: 'n', default: '42', description: 'Seed for --sample' },
    backend: { type: 'string', value: 'name', default: 'auto', choices: BACKEND_PREFERENCES, description: 'TensorFlow.js backend' },
    'database-url': { type: 'string', value: 'url', description: `Database (default: $DATABASE_URL, else ${DEFAULT_DATABASE_URL})` },
    quiet: { type: 'boolean', short: 'q', default: false, description: 'No progress output' },
  },
  details: `
The single-history export has the API's shape (GET /v1/users/:id/attention): attention weights per layer
as [1, heads, T, T] (BertViz's layout), the rollout from the last position (Abnar & Zuidema 2020), and
the drop in the target's probability when each event is removed. CSV is one tidy table with a "kind"
column (attention, rollout, leave_one_out, prediction). --sample reports, per layer and head, the mean
attention the last position gives to the event d steps back and to events of each type.`,
} satisfies JobSpec<Record<string, FlagSpec>>;

await runJob(spec, async ({ flags }) => {
  const modes = [flags.user, flags['session-file'], flags.sample].filter((x) => x !== undefined).length;
  if (modes !== 1) throw new AppError('USAGE', 'give exactly one of --user, --session-file and --sample (see --help)');
  if (flags.sample !== undefined && flags.format === 'html') throw new AppError('USAGE', '--sample writes json or csv');
  const k = integerFlag('k', flags.k, 1, 100);
  await selectBackend(flags.backend as BackendPreference);
  const store = openStore(flags['database-url'] ?? process.env.DATABASE_URL);
  const reader = servingReader(store);
  try {
    const row = flags.model
      ? await store.prisma.modelVersion.findUnique({ where: { id: integerFlag('model', flags.model, 1, 2 ** 31 - 1) } })
      : await store.prisma.modelVersion.findFirst({ where: { active: true } });
    if (!row) throw new AppError('MODEL_VERSION_NOT_FOUND', flags.model ? `model version ${flags.model} does not exist` : 'no model version is active; give --model <version>');
    if (row.status !== 'ready') throw new AppError('MODEL_VERSION_NOT_READY', `model version ${row.id} is '${row.status}', not 'ready'`);
    const model = ServedModel.load(row.id, row.createdAt, row.artifactPath);
    const catalog = new CatalogCache(reader);
    await catalog.reload();
    const typeIds = await reader.eventTypes();
    const typeNames = new Map([...typeIds].map(([name, id]) => [id, name]));

    let output: string;
    if (flags.sample !== undefined) {
      const n = integerFlag('sample', flags.sample, 1, 10_000_000);
      const sequences = await loadSequences(store, { by: 'user', maxPerOwner: model.config.maxLength * 4 });
      const random = new Random(integerFlag('seed', flags.seed, 0, 2 ** 31 - 1));
      const order = Array.from(sequences.owners, (_, s) => s);
      for (let i = order.length - 1; i > 0; i--) {
        const j = random.int(i + 1);
        [order[i], order[j]] = [order[j]!, order[i]!];
      }
      const chosen = order.slice(0, Math.min(n, order.length));
      const histories = chosen.map((s) => {
        const [a, b] = [sequences.offsets[s]!, sequences.offsets[s + 1]!];
        return { items: sequences.items.subarray(a, b), types: sequences.types.subarray(a, b) };
      });
      const progress = createProgress({ label: 'users', total: histories.length, unit: 'users', quiet: flags.quiet });
      const aggregate = aggregateAttention(model, histories, typeNames, (done) => progress.update(done));
      progress.finish();
      output = flags.format === 'csv' ? aggregateCsv(aggregate) : `${JSON.stringify(aggregate, null, 2)}\n`;
    } else {
      let events: ExplainedEvent[];
      let title: string;
      if (flags.user !== undefined) {
        const id = await reader.userId(flags.user);
        if (id === undefined) throw new AppError('USER_NOT_FOUND', `user '${flags.user}' has no stored events`);
        const history = await reader.userHistory(id);
        events = Array.from(history.items, (itemId, i) => ({ itemId, type: history.types[i]!, ts: history.timestamps[i]! }));
        title = `User ${flags.user} · model v${model.version}`;
      } else {
        events = readSession(flags['session-file']!, catalog, typeIds);
        title = `Session ${flags['session-file']} · model v${model.version}`;
      }
      const report = inspectHistory(model, catalog, typeNames, events, { k, target: flags.target, exclude: flags.exclude as 'none' | 'purchased' | 'seen' });
      output = flags.format === 'csv' ? reportCsv(report) : flags.format === 'html' ? reportHtml([{ ...report, title }]) : `${JSON.stringify({ ...(flags.user !== undefined && { user: flags.user }), ...report }, null, 2)}\n`;
    }
    if (flags.out === undefined) process.stdout.write(output);
    else {
      writeFileSync(flags.out, output);
      if (!flags.quiet) process.stderr.write(`wrote ${flags.out}\n`);
    }
    model.retire();
  } finally {
    reader.close();
    await store.close();
  }
});

function readSession(path: string, catalog: CatalogCache, typeIds: ReadonlyMap<string, number>): ExplainedEvent[] {
  let parsed: unknown;
  try {
    parsed = JSON.parse(readFileSync(path, 'utf8'));
  } catch (error) {
    throw new AppError('SESSION_FILE_INVALID', `cannot read ${path} as JSON: ${(error as Error).message}`);
  }
  const list = Array.isArray(parsed) ? parsed : (parsed as { events?: unknown })?.events;
  if (!Array.isArray(list) || list.length === 0) throw new AppError('SESSION_FILE_INVALID', `${path} must hold a non-empty list of {"item", "type"} events`);
  list.forEach((raw: unknown, i) => {
    const e = raw as { item?: unknown };
    if (typeof e?.item !== 'string' && typeof e?.item !== 'number') throw new AppError('SESSION_FILE_INVALID', `${path}: event ${i} has no item`);
  });
  const { events, errors } = sessionEvents(list as { item: string | number }[], catalog, typeIds);
  const first = errors[0];
  if (first) throw new AppError('SESSION_FILE_INVALID', `${path}: event ${first.index}: ${first.message}`);
  return events;
}
