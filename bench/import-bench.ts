import { existsSync, mkdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import pg from 'pg';
import { importEvents, type ImportOptions } from '../src/data/import/import-events.js';
import { DEFAULT_SASREC, type EventFormat } from '../src/data/import/sources.js';
import { migrate } from '../src/data/migrate.js';
import { loadSequences } from '../src/data/sequences.js';
import { openStore, type Store } from '../src/data/store.js';
import { createDatabase, dropDatabase, startThrowawayPostgres, throwawaySettings, type ThrowawayOptions } from '../src/cli/throwaway-postgres.js';
import { median } from './machine.js';
import { writeSyntheticCsv } from './synthetic-log.js';
import { SHIPPED_SAMPLE } from './shipped-sample.js';

/**
 * Import throughput into fresh SQLite and PostgreSQL databases: a generated
 * event log (1M events by default) and the shipped amazon-games sample.
 * Each import runs `runs` times on a new database; the median is reported.
 * PostgreSQL is a throwaway 15 cluster with its durability defaults on.
 */
export interface ImportBenchOptions {
  readonly events: number;
  readonly runs: number;
  readonly scratch: string;
  readonly log: (line: string) => void;
}

interface Run {
  readonly seconds: number;
  readonly events_per_s: number;
  readonly inserted: number;
}

const PG_OPTIONS: ThrowawayOptions = { durable: true };

export async function runImportBench(options: ImportBenchOptions): Promise<Record<string, unknown>> {
  mkdirSync(options.scratch, { recursive: true });
  const synthetic = join(options.scratch, `synthetic-${options.events}.csv`);
  if (!existsSync(synthetic)) {
    options.log(`generating ${synthetic}`);
    await writeSyntheticCsv(synthetic, { events: options.events, users: Math.max(10, Math.round(options.events / 20)), items: Math.max(10, Math.round(options.events / 50)), seed: 1 });
  }
  const server = await startThrowawayPostgres(PG_OPTIONS);
  try {
    const pgVersion = await serverVersion(server.url);
    let database = 0;
    const freshStore = async (provider: 'sqlite' | 'postgresql'): Promise<{ store: Store; dispose: () => Promise<void> }> => {
      if (provider === 'sqlite') {
        const file = join(options.scratch, `import-bench-${database++}.db`);
        removeSqlite(file);
        const store = openStore(`file:${file}`);
        return { store, dispose: async () => void (await store.close(), removeSqlite(file)) };
      }
      const name = `bench_${database++}`;
      const store = openStore(await createDatabase(server.url, name));
      return { store, dispose: async () => void (await store.close(), await dropDatabase(server.url, name)) };
    };

    const measure = async (provider: 'sqlite' | 'postgresql', path: string, format: EventFormat): Promise<{ runs: Run[]; sequenceSeconds: number }> => {
      const runs: Run[] = [];
      let sequenceSeconds = NaN;
      for (let r = 0; r < options.runs; r++) {
        const { store, dispose } = await freshStore(provider);
        try {
          await migrate(store);
          const importOptions: ImportOptions = { events: { path, format, timeUnit: 'auto', sasrec: DEFAULT_SASREC }, skipBad: false, eventTypes: 'register' };
          const started = performance.now();
          const report = await importEvents(store, importOptions);
          const seconds = (performance.now() - started) / 1000;
          const inserted = report.events?.inserted ?? 0;
          runs.push({ seconds: round(seconds, 3), events_per_s: Math.round(inserted / seconds), inserted });
          options.log(`${provider} ${format} run ${r + 1}/${options.runs}: ${inserted} events in ${seconds.toFixed(2)} s (${Math.round(inserted / seconds)} events/s)`);
          if (r === options.runs - 1) {
            const t = performance.now();
            const set = await loadSequences(store);
            sequenceSeconds = round((performance.now() - t) / 1000, 3);
            options.log(`${provider}: ${set.items.length} events into typed arrays in ${sequenceSeconds} s`);
          }
        } finally {
          await dispose();
        }
      }
      return { runs, sequenceSeconds };
    };

    const sqlite = await measure('sqlite', synthetic, 'csv');
    const postgres = await measure('postgresql', synthetic, 'csv');
    const sqliteSample = await measure('sqlite', SHIPPED_SAMPLE, 'sasrec');
    const postgresSample = await measure('postgresql', SHIPPED_SAMPLE, 'sasrec');
    const rate = (m: { runs: Run[] }): number => Math.round(median(m.runs.map((r) => r.events_per_s)));
    const syntheticName = options.events === 1_000_000 ? 'synthetic-1m' : `synthetic-${options.events}`;
    return {
      dataset: syntheticName,
      events: options.events,
      sqlite_events_per_s: rate(sqlite),
      postgres_events_per_s: rate(postgres),
      targets: { sqlite_events_per_s: 200_000, postgres_events_per_s: 100_000, sequence_load_seconds: 5 },
      sequence_load_seconds: { sqlite: sqlite.sequenceSeconds, postgres: postgres.sequenceSeconds },
      runs: { sqlite: sqlite.runs, postgres: postgres.runs },
      amazon_games: {
        events: sqliteSample.runs[0]?.inserted,
        sqlite_events_per_s: rate(sqliteSample),
        postgres_events_per_s: rate(postgresSample),
        runs: { sqlite: sqliteSample.runs, postgres: postgresSample.runs },
      },
      method: `median of ${options.runs} imports into a fresh, migrated database each; synthetic log: seed 1, CSV with 6 columns (user, session, item, type, ISO timestamp, value)`,
      postgres_server: { version: pgVersion, settings: throwawaySettings(PG_OPTIONS), loopback: true },
      sqlite: { journal_mode: 'WAL', synchronous: 'NORMAL' },
    };
  } finally {
    server.stop();
  }
}

function removeSqlite(file: string): void {
  for (const suffix of ['', '-wal', '-shm']) rmSync(file + suffix, { force: true });
}

async function serverVersion(url: string): Promise<string> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    return (await client.query<{ server_version: string }>('SHOW server_version')).rows[0]!.server_version;
  } finally {
    await client.end();
  }
}

function round(value: number, digits: number): number {
  return Math.round(value * 10 ** digits) / 10 ** digits;
}
