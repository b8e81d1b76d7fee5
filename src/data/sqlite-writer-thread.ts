import Database from 'better-sqlite3';
import { parentPort, workerData } from 'node:worker_threads';
import { sqliteAttributionReads, sqliteAttributionWrites } from './attributions.js';
import { CommittedIds } from './committed-ids.js';
import { carryError, writeEventGroup } from './event-batch-write.js';
import { sqliteImpressionStatements } from './impressions.js';
import { configureWriterConnection } from './sqlite-writer-connection.js';
import type { SqliteReaderRequest, SqliteThreadSettings, SqliteWriterRequest } from './sqlite-writer.js';

// A thread of src/data/sqlite-writer.ts: one connection, the statements of
// src/data/event-batch-write.ts, src/data/impressions.ts and src/data/attributions.ts. The writer's
// connection writes (under the process's write lock, taken by the caller);
// the reader's is read-only and runs at a lower priority (settings.nice, set by
// the entry, sqlite-writer-thread.mjs).
const settings = workerData as SqliteThreadSettings;
/** The writer's ids known to be committed (src/data/committed-ids.ts): every event batch of the process is written here. */
const ids = new CommittedIds();
const port = parentPort!;
const db = new Database(settings.file, { fileMustExist: true, readonly: settings.role === 'reader' });
db.pragma('busy_timeout = 10000');
if (settings.role === 'writer') configureWriterConnection(db, settings);

port.on('message', (message: (SqliteWriterRequest | SqliteReaderRequest | { readonly op: 'ready' | 'close' }) & { readonly id: number }) => {
  try {
    switch (message.op) {
      case 'ready':
        port.postMessage({ id: message.id });
        break;
      case 'impressions':
        sqliteImpressionStatements(db).insertPacked.immediate(message.packed);
        port.postMessage({ id: message.id });
        break;
      case 'prune':
        port.postMessage({ id: message.id, result: sqliteImpressionStatements(db).prune[message.table].run(message.floor, message.limit).changes });
        break;
      case 'attribution-commit':
        port.postMessage({ id: message.id, result: sqliteAttributionWrites(db).commit(message.plan) });
        break;
      case 'events':
        // Synchronous SQLite work behind promises that are already settled: it ends before the next message.
        writeEventGroup(db, ids, message.batches).then(
          (result) => port.postMessage({ id: message.id, result }),
          (error: unknown) => port.postMessage({ id: message.id, error: carryError(error).message }),
        );
        break;
      case 'attribution-read':
        port.postMessage({ id: message.id, result: sqliteAttributionReads(db).plan(message.upTo, message.windowMs, message.limit) });
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
