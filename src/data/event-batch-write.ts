import type Database from 'better-sqlite3';
import { AppError } from '../errors.js';
import type { CommittedIds } from './committed-ids.js';
import type { EventColumns } from './import/event-columns.js';
import { EventTypeRegistry, type EventTypePolicy } from './import/event-types.js';
import { resolveBatch } from './import/import-events.js';
import { groupByUser, type ImportTarget } from './import/import-target.js';
import { sqliteBatchSavepoint, sqliteImportTarget } from './import/sqlite-target.js';

export interface IngestResult {
  readonly received: number;
  readonly stored: number;
  /** Already stored (same eventId, or same owner, item, type and timestamp): not stored again. */
  readonly duplicates: number;
  /** Internal ids of the users and sessions whose histories may have changed. */
  readonly users: number[];
  readonly sessions: number[];
  /** Rows this batch created (unknown users, items, sessions are created on first sight). */
  readonly created: { readonly users: number; readonly items: number; readonly sessions: number };
}

/**
 * One batch inside an open transaction: resolves its ids (creating unknown users, items and sessions),
 * refuses it whole if any row cannot be stored (AppError VALIDATION_FAILED, naming each row by its index),
 * writes its events. `commitIds` publishes the ids it resolved once its transaction has committed.
 */
export async function writeBatch(
  target: ImportTarget,
  ids: CommittedIds,
  columns: EventColumns,
  policy: EventTypePolicy,
): Promise<{ result: IngestResult; commitIds: () => void }> {
  const before = { ...target.created };
  const registry = new EventTypeRegistry(await target.eventTypes(), policy);
  const caches = ids.transaction();
  const { events, problems } = await resolveBatch(target, registry, caches, columns);
  if (problems.length > 0) {
    throw new AppError('VALIDATION_FAILED', `${problems.length} of ${columns.count} events cannot be stored; none were`, {
      errors: problems.map((p) => ({ index: p.line - 1, code: p.code, message: p.message })),
    });
  }
  await target.stageEvents(target.prepareEvents(groupByUser(events)));
  const stored = await target.flushStaged();
  const { created } = target;
  return {
    result: {
      received: columns.count,
      stored,
      duplicates: columns.count - stored,
      users: distinctNonZero(events.userId, events.count),
      sessions: distinctNonZero(events.sessionId, events.count),
      created: { users: created.users - before.users, items: created.items - before.items, sessions: created.sessions - before.sessions },
    },
    commitIds: caches.commit,
  };
}

/** One batch of a SQLite group commit: what it holds, and whether it is only checked (IngestOptions.dryRun). */
export interface GroupBatch {
  readonly columns: EventColumns;
  readonly policy: EventTypePolicy;
  readonly dryRun: boolean;
}

/** An error as it crosses a thread: an AppError keeps its code and details, anything else its message. */
export type CarriedError = { readonly code: string; readonly message: string; readonly details: Readonly<Record<string, unknown>> } | { readonly message: string };

/**
 * What a group commit did with each batch (in the group's order), how many rows it changed (the WAL checkpointer
 * counts them), and whether a refused batch made it write the group a second time, each batch in a savepoint.
 */
export interface GroupOutcome {
  readonly batches: readonly ({ readonly result: IngestResult } | { readonly error: CarriedError })[];
  readonly changed: number;
  readonly rewritten: boolean;
}

export function carryError(error: unknown): CarriedError {
  if (error instanceof AppError) return { code: error.code, message: error.message, details: error.details };
  return { message: error instanceof Error ? error.message : String(error) };
}

export function raiseCarried(error: CarriedError): Error {
  return 'code' in error ? new AppError(error.code, error.message, { ...error.details }) : new Error(error.message);
}

/**
 * A group commit on SQLite (src/data/ingest-events.ts says why): `batches` in one IMMEDIATE transaction on
 * `db`, each of them all-or-nothing on its own; a dry run is written inside a savepoint, then rolled back
 * to it. The ids of the batches that were stored reach `ids` once the transaction has committed. Everything
 * it does is synchronous SQLite work: it runs on the SQLite writer thread (src/data/sqlite-writer.ts), or on
 * the main connection when the database is in memory. The caller holds the process's write lock.
 *
 * The batches are written first without savepoints, since a batch that passed the API's checks is almost
 * never refused: a savepoint makes SQLite copy each page the batch changes into a statement journal first,
 * and a write on the serve benchmark's store cost the writer thread ~2.5 µs an event more with one
 * (23.2-23.5 against 20.2-21.0 µs, ingestion alone, alternating runs; docs/serving-performance.md,
 * "The writer thread's CPU"). If a batch is refused, the whole transaction is rolled back and the group is
 * written again with each batch inside a savepoint of its own: the refused batch rolls back to its savepoint
 * (nothing of it stays, the ids it created included) and the others go on. A group of one batch needs no
 * savepoint: the transaction is its all-or-nothing.
 */
export async function writeEventGroup(db: Database.Database, ids: CommittedIds, batches: readonly GroupBatch[]): Promise<GroupOutcome> {
  const first = await writeGroupOnce(db, ids, batches, batches.length === 1 ? 'alone' : 'optimistic');
  return first ?? { ...(await writeGroupOnce(db, ids, batches, 'savepoints'))!, rewritten: true };
}

/**
 * How a group is written: `savepoints`, each batch inside one; `optimistic`, only dry runs inside one, and a
 * refused batch makes it answer undefined, the transaction rolled back; `alone`, the group's one batch
 * without one, a refusal rolling the transaction back.
 */
type GroupMode = 'savepoints' | 'optimistic' | 'alone';

async function writeGroupOnce(db: Database.Database, ids: CommittedIds, batches: readonly GroupBatch[], mode: GroupMode): Promise<GroupOutcome | undefined> {
  const target = sqliteImportTarget(db);
  const savepoint = sqliteBatchSavepoint(db);
  const outcomes: ({ result: IngestResult } | { error: CarriedError })[] = [];
  const all = (error: unknown): GroupOutcome => ({ batches: batches.map(() => ({ error: carryError(error) })), changed: 0, rewritten: false });
  const commits: (() => void)[] = [];
  let changed = 0;
  try {
    await target.begin();
  } catch (error) {
    return all(error);
  }
  for (const batch of batches) {
    const inSavepoint = mode === 'savepoints' || batch.dryRun;
    if (inSavepoint) savepoint.begin.run();
    try {
      const done = await writeBatch(target, ids, batch.columns, batch.policy);
      // A dry run keeps nothing, the ids it created included (its id layer is never committed).
      if (batch.dryRun) savepoint.rollback.run();
      else {
        commits.push(done.commitIds);
        const { result } = done;
        changed += result.stored + result.created.users + result.created.items + result.created.sessions;
      }
      if (inSavepoint) savepoint.release.run();
      outcomes.push({ result: done.result });
    } catch (error) {
      // SQLite rolled the whole transaction back (disk full, I/O error): nothing of the group is stored.
      if (!db.inTransaction) return all(error);
      if (!inSavepoint) {
        await target.rollback();
        return mode === 'alone' ? all(error) : undefined;
      }
      outcomes.push({ error: carryError(error) });
      savepoint.rollback.run();
      savepoint.release.run();
    }
  }
  try {
    await target.commit();
  } catch (error) {
    await target.rollback();
    return all(error);
  }
  for (const commit of commits) commit();
  return { batches: outcomes, changed, rewritten: false };
}

function distinctNonZero(values: Int32Array, count: number): number[] {
  const seen = new Set<number>();
  for (let i = 0; i < count; i++) if (values[i] !== 0) seen.add(values[i]!);
  return [...seen];
}
