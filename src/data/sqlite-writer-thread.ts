import Database from 'better-sqlite3';
import { parentPort, workerData } from 'node:worker_threads';
import { sqliteAttributionStatements } from './attributions.js';
import { sqliteImpressionStatements } from './impressions.js';
import type { SqliteWriterRequest, SqliteWriterSettings } from './sqlite-writer.js';

// The SQLite writer thread (src/data/sqlite-writer.ts): one connection, the
// statements of src/data/impressions.ts and src/data/attributions.ts.
const settings = workerData as SqliteWriterSettings;
const port = parentPort!;
const db = new Database(settings.file, { fileMustExist: true });
db.pragma('busy_timeout = 10000');
db.pragma('wal_autocheckpoint = 0');
db.pragma('foreign_keys = ON');
db.pragma(`synchronous = ${Number(settings.synchronous)}`);

port.on('message', (message: (SqliteWriterRequest | { readonly op: 'close' }) & { readonly id: number }) => {
  try {
    switch (message.op) {
      case 'impressions':
        sqliteImpressionStatements(db).insertBatch.immediate(message.batch);
        port.postMessage({ id: message.id });
        break;
      case 'prune':
        port.postMessage({ id: message.id, result: sqliteImpressionStatements(db).prune[message.table].run(message.floor, message.limit).changes });
        break;
      case 'attribute':
        port.postMessage({ id: message.id, result: sqliteAttributionStatements(db).run.immediate(message.upTo, message.windowMs, message.limit) });
        break;
      case 'close':
        db.close();
        port.close();
        break;
    }
  } catch (error) {
    port.postMessage({ id: message.id, error: String((error as Error)?.message ?? error) });
  }
});
