import { createHash } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { AppError } from '../errors.js';
import type { Store } from './store.js';

/**
 * Applies the hand-written SQL migrations in prisma/migrations/<provider>/ in
 * name order and records each in `_attnrec_migrations` (Prisma's own migrate
 * needs a schema engine that cannot be installed here). Each migration runs in
 * its own transaction: a failing one leaves the database as it was before it.
 */

export interface Migration {
  readonly name: string;
  readonly sql: string;
  readonly checksum: string;
}

export interface MigrationReport {
  readonly applied: string[];
  readonly alreadyApplied: string[];
}

const MIGRATIONS_ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'prisma', 'migrations');
// Any constant works; it only has to be the same for every attnrec process.
const PG_LOCK_KEY = 0x617474_6e72;

export function migrationsFolder(provider: Store['provider']): string {
  return join(MIGRATIONS_ROOT, provider === 'postgresql' ? 'postgres' : 'sqlite');
}

export function readMigrations(folder: string): Migration[] {
  return readdirSync(folder)
    .filter((file) => file.endsWith('.sql'))
    .sort()
    .map((file) => {
      const sql = readFileSync(join(folder, file), 'utf8');
      return { name: file.replace(/\.sql$/, ''), sql, checksum: createHash('sha256').update(sql).digest('hex') };
    });
}

/** Compares what the database has applied with the files; returns what is still to apply. */
export function pendingMigrations(migrations: readonly Migration[], applied: ReadonlyMap<string, string>): Migration[] {
  const known = new Set(migrations.map((m) => m.name));
  for (const name of applied.keys()) {
    if (!known.has(name)) {
      throw new AppError(
        'MIGRATION_UNKNOWN',
        `the database has migration '${name}', which this version of attnrec does not know: it was migrated by a newer version`,
        { migration: name },
      );
    }
  }
  for (const migration of migrations) {
    const checksum = applied.get(migration.name);
    if (checksum !== undefined && checksum !== migration.checksum) {
      throw new AppError(
        'MIGRATION_CHANGED',
        `migration '${migration.name}' was edited after it was applied; add a new migration instead of changing an applied one`,
        { migration: migration.name },
      );
    }
  }
  return migrations.filter((m) => !applied.has(m.name));
}

const LEDGER_SQL = `CREATE TABLE IF NOT EXISTS _attnrec_migrations (
  name TEXT PRIMARY KEY,
  checksum TEXT NOT NULL,
  applied_at TEXT NOT NULL
)`;

export async function migrate(store: Store, folder = migrationsFolder(store.provider)): Promise<MigrationReport> {
  const migrations = readMigrations(folder);
  return store.provider === 'sqlite' ? migrateSqlite(store.db, migrations) : migratePostgres(store.pool, migrations);
}

function migrateSqlite(db: Extract<Store, { provider: 'sqlite' }>['db'], migrations: Migration[]): MigrationReport {
  db.exec(LEDGER_SQL);
  const readLedger = (): Map<string, string> =>
    new Map((db.prepare('SELECT name, checksum FROM _attnrec_migrations').all() as { name: string; checksum: string }[]).map((r) => [r.name, r.checksum]));
  const record = db.prepare('INSERT INTO _attnrec_migrations (name, checksum, applied_at) VALUES (?, ?, ?)');
  const alreadyApplied = [...readLedger().keys()];
  const applied: string[] = [];
  // One IMMEDIATE transaction per migration: it takes the write lock before
  // re-reading the ledger, so two runners never apply the same migration.
  const applyNext = db.transaction((): boolean => {
    const next = pendingMigrations(migrations, readLedger())[0];
    if (!next) return false;
    try {
      db.exec(next.sql);
    } catch (error) {
      throw new AppError('MIGRATION_FAILED', `migration '${next.name}' failed: ${(error as Error).message}`, { migration: next.name }, { cause: error });
    }
    record.run(next.name, next.checksum, new Date().toISOString());
    applied.push(next.name);
    return true;
  });
  while (applyNext.immediate()) {
    // keep applying
  }
  return { applied, alreadyApplied };
}

async function migratePostgres(pool: Extract<Store, { provider: 'postgresql' }>['pool'], migrations: Migration[]): Promise<MigrationReport> {
  const client = await pool.connect();
  try {
    await client.query('SELECT pg_advisory_lock($1)', [PG_LOCK_KEY]);
    await client.query(LEDGER_SQL);
    const { rows } = await client.query<{ name: string; checksum: string }>('SELECT name, checksum FROM _attnrec_migrations');
    const pending = pendingMigrations(migrations, new Map(rows.map((r) => [r.name, r.checksum])));
    const applied: string[] = [];
    for (const migration of pending) {
      await client.query('BEGIN');
      try {
        await client.query(migration.sql);
        await client.query('INSERT INTO _attnrec_migrations (name, checksum, applied_at) VALUES ($1, $2, $3)', [
          migration.name,
          migration.checksum,
          new Date().toISOString(),
        ]);
        await client.query('COMMIT');
      } catch (error) {
        await client.query('ROLLBACK');
        throw new AppError('MIGRATION_FAILED', `migration '${migration.name}' failed: ${(error as Error).message}`, { migration: migration.name }, { cause: error });
      }
      applied.push(migration.name);
    }
    return { applied, alreadyApplied: rows.map((r) => r.name) };
  } finally {
    await client.query('SELECT pg_advisory_unlock($1)', [PG_LOCK_KEY]).catch(() => {});
    client.release();
  }
}

/** Names of the migrations the database still lacks (all of them when it was never migrated); applies nothing. */
export async function unappliedMigrations(store: Store, folder = migrationsFolder(store.provider)): Promise<string[]> {
  const migrations = readMigrations(folder);
  let rows: { name: string; checksum: string }[];
  if (store.provider === 'sqlite') {
    const ledger = store.db.prepare("SELECT name FROM sqlite_master WHERE type = 'table' AND name = '_attnrec_migrations'").get();
    rows = ledger ? (store.db.prepare('SELECT name, checksum FROM _attnrec_migrations').all() as { name: string; checksum: string }[]) : [];
  } else {
    const ledger = await store.pool.query("SELECT to_regclass('_attnrec_migrations') IS NOT NULL AS present");
    rows = ledger.rows[0]?.present ? (await store.pool.query<{ name: string; checksum: string }>('SELECT name, checksum FROM _attnrec_migrations')).rows : [];
  }
  return pendingMigrations(migrations, new Map(rows.map((r) => [r.name, r.checksum]))).map((m) => m.name);
}
