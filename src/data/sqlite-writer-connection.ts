import type Database from 'better-sqlite3';

/** What the writer thread's connection takes from the process's main connection (src/data/sqlite-writer.ts). */
export interface WriterConnectionSettings {
  /** PRAGMA synchronous, as the main connection has it. */
  readonly synchronous: number;
  /** PRAGMA cache_size (pages, or KiB when negative): writerCacheSize of the main connection's. */
  readonly cacheSize: number;
}

/**
 * The writer thread's pragmas on its own connection (src/data/sqlite-writer-thread.ts); also what
 * bench/sqlite-event-floor.ts sets, so that it measures SQLite as the writer runs it.
 */
export function configureWriterConnection(db: Database.Database, settings: WriterConnectionSettings): void {
  db.pragma('wal_autocheckpoint = 0');
  db.pragma('foreign_keys = ON');
  db.pragma(`synchronous = ${Number(settings.synchronous)}`);
  db.pragma(`cache_size = ${Number(settings.cacheSize)}`);
  // As the main connection (src/data/store.ts): with temporary files, each batch of events in its savepoint
  // wrote a statement journal to a file, ~0.4 MB a batch of 100 beside its ~0.5 MB of WAL (/proc/<tid>/io).
  db.pragma('temp_store = MEMORY');
}
