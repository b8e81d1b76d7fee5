import { statSync } from 'node:fs';
import { AppError } from '../../errors.js';
import type { Store } from '../store.js';
import { readCatalog } from './catalog.js';
import type { EventColumns } from './event-columns.js';
import type { BadLine } from './event-row.js';
import { EventTypeRegistry, type EventTypePolicy } from './event-types.js';
import { FieldError } from './fields.js';
import { groupByUser, type ImportTarget, type ResolvedEvents, type SessionRef } from './import-target.js';
import { postgresImportTarget } from './postgres-target.js';
import { readColumnBatches } from './parallel-source.js';
import type { EventFormat, SourceOptions } from './sources.js';
import { sqliteImportTarget } from './sqlite-target.js';

export interface ImportOptions {
  /** Event log to load; optional when only a catalogue is imported. */
  readonly events?: { readonly path: string } & SourceOptions;
  /** Item catalogue CSV (item_id, title, category, price, active, properties), applied before the events. */
  readonly catalogPath?: string;
  /** Skip and count bad lines instead of stopping at the first one. */
  readonly skipBad: boolean;
  readonly eventTypes: EventTypePolicy;
  /** How many bad lines the report lists (all are counted). */
  readonly maxBadExamples?: number;
  /** Once with bytesRead 0 when the event file is opened (bytesTotal is its size), then after every batch. */
  readonly onProgress?: (progress: ImportProgress) => void;
  /** Parse on a worker thread, overlapping with database writes (default true). */
  readonly parallel?: boolean;
}

export interface ImportProgress {
  readonly bytesRead: number;
  readonly bytesTotal: number;
  readonly linesRead: number;
  readonly eventsRead: number;
}

export interface ImportReport {
  readonly events?: {
    readonly file: string;
    readonly format: EventFormat;
    readonly lines: number;
    readonly read: number;
    readonly inserted: number;
    readonly duplicates: number;
  };
  readonly catalog?: { readonly file: string; readonly rows: number; readonly inserted: number; readonly updated: number };
  readonly skipped: { readonly count: number; readonly examples: (BadLine & { file: string })[] };
  readonly created: { readonly users: number; readonly items: number; readonly sessions: number; readonly eventTypes: readonly string[] };
  readonly seconds: number;
  readonly eventsPerSecond: number;
}

/**
 * Imports an item catalogue and/or an event log in ONE transaction: a bad
 * line (unless skipBad) or any failure rolls everything back, so a failed
 * import leaves the store exactly as it was. Re-importing the same data
 * inserts nothing: events are deduplicated by event id and content key.
 */
export async function importEvents(store: Store, options: ImportOptions): Promise<ImportReport> {
  if (!options.events && !options.catalogPath) throw new AppError('IMPORT_NOTHING', 'nothing to import: give an event log, an item catalogue, or both');
  const started = performance.now();
  const maxExamples = options.maxBadExamples ?? 20;
  const skipped: (BadLine & { file: string })[] = [];
  let skippedCount = 0;
  const rejectLine = (file: string, bad: BadLine): void => {
    if (!options.skipBad) {
      throw new AppError('IMPORT_BAD_LINE', `${file}:${bad.line}: ${bad.message}`, { file, line: bad.line, reason: bad.code });
    }
    skippedCount++;
    if (skipped.length < maxExamples) skipped.push({ file, ...bad });
  };

  // Read the catalogue before opening the transaction: it is small, and a bad one fails fast.
  const catalog = options.catalogPath ? await readCatalog(options.catalogPath) : undefined;
  if (catalog) for (const bad of catalog.bad) rejectLine(options.catalogPath!, bad);

  const target: ImportTarget = store.provider === 'sqlite' ? sqliteImportTarget(store.db) : await postgresImportTarget(store.pool);
  await target.begin();
  try {
    const catalogResult = catalog ? await target.upsertCatalog(catalog.rows) : undefined;
    const registry = new EventTypeRegistry(await target.eventTypes(), options.eventTypes);
    const eventsResult = options.events ? await loadEvents(target, registry, options.events, options, rejectLine) : undefined;
    await target.commit();
    const seconds = (performance.now() - started) / 1000;
    return {
      ...(eventsResult && { events: eventsResult }),
      ...(catalogResult && { catalog: { file: options.catalogPath!, rows: catalog!.rows.length, ...catalogResult } }),
      skipped: { count: skippedCount, examples: skipped },
      created: { ...target.created, eventTypes: registry.registeredNames },
      seconds,
      eventsPerSecond: eventsResult ? eventsResult.read / seconds : 0,
    };
  } catch (error) {
    await target.rollback();
    throw error;
  }
}

async function loadEvents(
  target: ImportTarget,
  registry: EventTypeRegistry,
  source: { readonly path: string } & SourceOptions,
  options: ImportOptions,
  rejectLine: (file: string, bad: BadLine) => void,
): Promise<NonNullable<ImportReport['events']>> {
  const file = source.path;
  let bytesTotal: number;
  try {
    bytesTotal = statSync(file).size;
  } catch {
    throw new AppError('IMPORT_FILE_NOT_FOUND', `cannot read '${file}'`, { file });
  }
  options.onProgress?.({ bytesRead: 0, bytesTotal, linesRead: 0, eventsRead: 0 });
  const caches: IdCaches = { users: new Map(), items: new Map(), sessions: new Map() };
  let read = 0;
  let inserted = 0;
  let lines = 0;

  for await (const batch of readColumnBatches(file, source, options.parallel ?? true)) {
    lines = batch.linesRead;
    const ids = await resolveBatchIds(target, registry, caches, batch.events, batch.bad);
    // The previous batch moves into `events` on the database while this one is built here.
    const flushing = target.flushStaged();
    flushing.catch(() => {}); // awaited below; a failure must not surface as an unhandled rejection first
    const { events: resolved, problems } = buildResolvedEvents(batch.events, ids);
    inserted += await flushing;
    for (const bad of problems) rejectLine(file, bad);
    await target.stageEvents(target.prepareEvents(groupByUser(resolved)));
    read += resolved.count;
    options.onProgress?.({ bytesRead: batch.bytesRead, bytesTotal, linesRead: lines, eventsRead: read });
  }
  inserted += await target.flushStaged();
  return { file, format: source.format, lines, read, inserted, duplicates: read - inserted };
}

/** External → internal ids already resolved (a Map, or anything that looks up and remembers like one). */
export interface IdCaches {
  readonly users: IdCache<number>;
  readonly items: IdCache<number>;
  readonly sessions: IdCache<SessionRef>;
}

export interface IdCache<V> {
  get(externalId: string): V | undefined;
  set(externalId: string, value: V): unknown;
}

/**
 * Turns a batch of validated events into internal ids inside the target's
 * transaction: event types (registered under the registry's policy), users,
 * items and sessions (created when new). Rows that cannot be stored (an
 * unacceptable type, a session that belongs to another user) come back as
 * problems, sorted by line, together with `bad` (the parser's own rejects).
 * Both the file import and the HTTP ingestion route write through this.
 */
export async function resolveBatch(
  target: ImportTarget,
  registry: EventTypeRegistry,
  caches: IdCaches,
  e: EventColumns,
  bad: readonly BadLine[] = [],
): Promise<{ events: ResolvedEvents; problems: BadLine[] }> {
  return buildResolvedEvents(e, await resolveBatchIds(target, registry, caches, e, bad));
}

/** The ids of a batch's distinct users, items, sessions and types (the database half of resolveBatch). */
export interface BatchIds {
  readonly keep: Uint8Array;
  readonly typeIds: Int32Array;
  readonly userIds: Int32Array;
  readonly itemIds: Int32Array;
  readonly sessionRefs: (SessionRef | undefined)[];
  readonly problems: BadLine[];
}

export async function resolveBatchIds(
  target: ImportTarget,
  registry: EventTypeRegistry,
  caches: IdCaches,
  e: EventColumns,
  bad: readonly BadLine[] = [],
): Promise<BatchIds> {
  const problems: BadLine[] = [...bad];
  // Event types, once per distinct name; rows of an unacceptable type are dropped.
  const typeIds = new Int32Array(e.types.length);
  const typeErrors = e.types.map((name, j) => {
    const id = registry.resolve(name);
    if (id instanceof FieldError) return id;
    typeIds[j] = id;
    return undefined;
  });
  const keep = new Uint8Array(e.count);
  for (let i = 0; i < e.count; i++) {
    const error = typeErrors[e.type[i]!];
    if (error) problems.push({ line: e.line[i]!, code: error.code, message: error.message });
    else keep[i] = 1;
  }
  await target.addEventTypes(registry.takeAdded());

  // Users and items: each distinct external id used by a kept row, resolved once (created if new).
  const userIds = await resolveDictionary(caches.users, e.users, e.user, keep, (ids) => target.resolveUsers(ids));
  const itemIds = await resolveDictionary(caches.items, e.items, e.item, keep, (ids) => target.resolveItems(ids));
  const sessionRefs = await resolveSessionDictionary(target, caches.sessions, e, keep, userIds);
  return { keep, typeIds, userIds, itemIds, sessionRefs, problems };
}

/** The batch in internal ids (the JavaScript half of resolveBatch); rows that cannot be stored become problems. */
export function buildResolvedEvents(e: EventColumns, ids: BatchIds): { events: ResolvedEvents; problems: BadLine[] } {
  const { keep, typeIds, userIds, itemIds, sessionRefs } = ids;
  const problems = [...ids.problems];
  const out = {
    count: 0,
    userId: new Int32Array(e.count),
    sessionId: new Int32Array(e.count),
    itemId: new Int32Array(e.count),
    typeId: new Int32Array(e.count),
    ts: new Float64Array(e.count),
    value: new Float64Array(e.count),
    quantity: new Int32Array(e.count),
    eventId: [] as (string | null)[],
    recommendationId: [] as (string | null)[],
  };
  for (let i = 0; i < e.count; i++) {
    if (keep[i] === 0) continue;
    const u = e.user[i]!;
    const userId = u < 0 ? 0 : userIds[u]!;
    const s = e.session[i]!;
    const session = s < 0 ? undefined : sessionRefs[s]!;
    if (session && userId !== 0 && session.userId !== null && session.userId !== userId) {
      problems.push({ line: e.line[i]!, code: 'SESSION_USER_CONFLICT', message: `session '${e.sessions[s]}' belongs to another user than '${e.users[u]}'` });
      continue;
    }
    const k = out.count++;
    out.userId[k] = userId;
    out.sessionId[k] = session?.id ?? 0;
    out.itemId[k] = itemIds[e.item[i]!]!;
    out.typeId[k] = typeIds[e.type[i]!]!;
    out.ts[k] = e.ts[i]!;
    out.value[k] = e.value[i]!;
    out.quantity[k] = e.quantity[i]!;
    out.eventId.push(e.eventId[i]!);
    out.recommendationId.push(e.recommendationId[i]!);
  }
  problems.sort((a, b) => a.line - b.line);
  return { events: out, problems };
}

/**
 * Internal ids for a batch's dictionary of external ids: from the import-wide
 * cache, else resolved (and created) in one call for all the new ones. Only
 * entries used by kept rows are resolved, so a skipped line creates nothing.
 */
async function resolveDictionary(
  cache: IdCache<number>,
  values: readonly string[],
  codes: Int32Array,
  keep: Uint8Array,
  resolve: (ids: string[]) => Promise<number[]>,
): Promise<Int32Array> {
  const used = new Uint8Array(values.length);
  for (let i = 0; i < codes.length; i++) if (keep[i] === 1 && codes[i]! >= 0) used[codes[i]!] = 1;
  const internal = new Int32Array(values.length);
  const missing: number[] = [];
  for (let j = 0; j < values.length; j++) {
    if (used[j] === 0) continue;
    const id = cache.get(values[j]!);
    if (id === undefined) missing.push(j);
    else internal[j] = id;
  }
  if (missing.length > 0) {
    const resolved = await resolve(missing.map((j) => values[j]!));
    missing.forEach((j, k) => {
      internal[j] = resolved[k]!;
      cache.set(values[j]!, resolved[k]!);
    });
  }
  return internal;
}

/** Sessions of a batch; the first user seen with a session is attached to it if it has none yet. */
async function resolveSessionDictionary(
  target: ImportTarget,
  cache: IdCache<SessionRef>,
  e: EventColumns,
  keep: Uint8Array,
  userIds: Int32Array,
): Promise<(SessionRef | undefined)[]> {
  const firstUser = new Int32Array(e.sessions.length).fill(-1); // -1: unused, 0: only anonymous rows
  for (let i = 0; i < e.count; i++) {
    const s = e.session[i]!;
    if (keep[i] === 0 || s < 0) continue;
    const u = e.user[i]!;
    if (firstUser[s]! <= 0) firstUser[s] = u < 0 ? 0 : userIds[u]!;
  }
  const refs: (SessionRef | undefined)[] = new Array(e.sessions.length);
  const wanted: { externalId: string; userId: number | null; j: number }[] = [];
  for (let j = 0; j < e.sessions.length; j++) {
    const user = firstUser[j]!;
    if (user < 0) continue;
    const known = cache.get(e.sessions[j]!);
    if (known && (known.userId !== null || user === 0)) refs[j] = known;
    else wanted.push({ externalId: e.sessions[j]!, userId: user === 0 ? null : user, j });
  }
  if (wanted.length > 0) {
    const resolved = await target.resolveSessions(wanted);
    wanted.forEach((w, k) => {
      refs[w.j] = resolved[k]!;
      cache.set(w.externalId, resolved[k]!);
    });
  }
  return refs;
}
