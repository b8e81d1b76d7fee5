import Database from 'better-sqlite3';
import pg from 'pg';
import { ensureSqliteFolder, parseDatabaseUrl, type DatabaseTarget } from '../config/database-url.js';
import { createPrismaClient, type PrismaClient } from './prisma-client.js';

/**
 * An open event store: the raw driver for bulk paths (import, sequence
 * streaming) and a Prisma client for everything else, on the same database.
 */
export type Store = SqliteStore | PostgresStore;

interface StoreBase {
  readonly target: DatabaseTarget;
  /** Prisma client, created on first use (bulk jobs never pay for it). */
  readonly prisma: PrismaClient;
  close(): Promise<void>;
}

export interface SqliteStore extends StoreBase {
  readonly provider: 'sqlite';
  readonly db: Database.Database;
}

export interface PostgresStore extends StoreBase {
  readonly provider: 'postgresql';
  readonly pool: pg.Pool;
}

/** Pragmas every attnrec SQLite connection runs with. WAL lets readers run beside the writer. */
export function openSqlite(file: string): Database.Database {
  const db = new Database(file);
  db.pragma('journal_mode = WAL');
  db.pragma('synchronous = NORMAL');
  db.pragma('foreign_keys = ON');
  db.pragma('busy_timeout = 10000');
  db.pragma('cache_size = -131072'); // 128 MiB page cache: bulk imports touch several indexes
  db.pragma('temp_store = MEMORY');
  return db;
}

/**
 * Opens the store at a DATABASE_URL (undefined = the embedded default). The
 * caller decides where the URL comes from (a flag, the environment, config);
 * nothing here reads the environment.
 */
export function openStore(url: string | undefined): Store {
  const target = parseDatabaseUrl(url);
  if (target.provider === 'sqlite') {
    ensureSqliteFolder(target);
    const db = openSqlite(target.file);
    return withLazyPrisma({ provider: 'sqlite', target, db }, () => {
      if (db.open) db.close();
    });
  }
  const pool = new pg.Pool({ connectionString: target.url, max: 4 });
  // An idle client losing its server must not crash the process; the next query reports it.
  pool.on('error', () => {});
  return withLazyPrisma({ provider: 'postgresql', target, pool }, () => pool.end());
}

/** Adds the Prisma client (created on first use) and a close() that shuts both down. */
function withLazyPrisma<T extends Omit<Store, 'prisma' | 'close'>>(base: T, closeDriver: () => void | Promise<void>): T & Pick<Store, 'prisma' | 'close'> {
  let prisma: PrismaClient | undefined;
  return Object.assign(base, {
    get prisma(): PrismaClient {
      return (prisma ??= createPrismaClient(base.target));
    },
    async close(): Promise<void> {
      if (prisma) await prisma.$disconnect();
      await closeDriver();
    },
  });
}
