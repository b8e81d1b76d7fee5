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

// node-pg turns int8 into strings by default; event ids and counts fit in a double.
pg.types.setTypeParser(pg.types.builtins.INT8, (value) => Number(value));

export function openStore(url?: string): Store {
  const target = parseDatabaseUrl(url ?? process.env.DATABASE_URL);
  let prisma: PrismaClient | undefined;
  const lazyPrisma = (): PrismaClient => (prisma ??= createPrismaClient(target));
  const closePrisma = async (): Promise<void> => {
    if (prisma) await prisma.$disconnect();
  };

  if (target.provider === 'sqlite') {
    ensureSqliteFolder(target);
    const db = openSqlite(target.file);
    return {
      provider: 'sqlite',
      target,
      db,
      get prisma() {
        return lazyPrisma();
      },
      async close() {
        await closePrisma();
        if (db.open) db.close();
      },
    };
  }
  const pool = new pg.Pool({ connectionString: target.url, max: 4 });
  // An idle client losing its server must not crash the process; the next query reports it.
  pool.on('error', () => {});
  return {
    provider: 'postgresql',
    target,
    pool,
    get prisma() {
      return lazyPrisma();
    },
    async close() {
      await closePrisma();
      await pool.end();
    },
  };
}
