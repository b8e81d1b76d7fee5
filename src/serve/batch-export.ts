import { createHash } from 'node:crypto';
import { createReadStream, existsSync, readFileSync, renameSync, rmSync, statSync, truncateSync, writeFileSync } from 'node:fs';
import { open, type FileHandle } from 'node:fs/promises';
import { createInterface } from 'node:readline';
import { toJsonValue } from '../data/json.js';
import { unappliedMigrations } from '../data/migrate.js';
import { servingReader } from '../data/serving-reader.js';
import type { Store } from '../data/store.js';
import { AppError } from '../errors.js';
import { CatalogCache } from './catalog-cache.js';
import { InferencePool } from './inference-pool.js';
import { filtersOf, type FilterParameters } from './merchandising.js';
import { ModelRegistry } from './model-registry.js';
import { ProblemError } from './problem.js';
import { Recommender, type Recommendations } from './recommender.js';

/**
 * Every user's recommendations at once, for an email campaign or a shop's own
 * cache (`npm run export`): the serving path without HTTP (the active version
 * on worker threads, the catalogue, the filter and boost rules, the popular
 * fallback), so an exported list is what the API would answer.
 *
 * - Streaming with bounded memory: users are read a page at a time (or a line
 *   at a time from a file), WINDOW requests are in flight, and answers are
 *   written in the users' order as they complete.
 * - Resumable: a file export keeps a state file beside its output (the
 *   position of the last user written and the output's length then); the
 *   table export's rows carry their position. --resume continues after it;
 *   an interrupted run (Ctrl-C) stops at a clean point and says so.
 * - An existing output is never overwritten unless asked (--overwrite).
 */

export type ExportFormat = 'jsonl' | 'csv' | 'table';

export interface ExportOptions {
  /** 'all': every user, by internal id; else a file of user ids, one per line. */
  readonly users: 'all' | { readonly file: string };
  readonly k: number;
  readonly format: ExportFormat;
  /** The output file (jsonl, csv) or the export's name in recommendation_exports (table). */
  readonly output: string;
  readonly overwrite: boolean;
  readonly resume: boolean;
  readonly filters: Omit<FilterParameters, 'pins'>;
  readonly workers: number;
  readonly log: (message: string) => void;
  /** Called after each chunk: users done so far, and the total when known. */
  readonly onProgress?: (done: number, total: number | undefined) => void;
  /** Aborting stops the export at the next chunk boundary, resumable. */
  readonly signal?: AbortSignal;
  /** Users per written chunk and checkpoint (default CHUNK). */
  readonly chunkUsers?: number;
}

export interface ExportReport {
  readonly users: number;
  readonly skippedBefore: number;
  readonly seconds: number;
  readonly usersPerSecond: number;
  readonly modelVersion: number | null;
  readonly interrupted: boolean;
  readonly output: string;
  /** The process's peak resident memory at the end (VmHWM): the export's memory stays bounded whatever the users. */
  readonly peakRssMb: number;
}

/** Requests in flight: enough to fill every worker's batches. */
const WINDOW = 64;
/** Users per written chunk (and per checkpoint). */
const CHUNK = 500;
/** Users read per page of --users all. */
const PAGE = 5_000;

interface ExportUser {
  readonly position: number;
  readonly externalId: string;
}

interface ExportedUser {
  readonly user: ExportUser;
  readonly result: Recommendations;
}

interface Sink {
  /** The last position already stored (resume), 0 for none. */
  readonly resumeAfter: number;
  write(rows: readonly ExportedUser[]): Promise<void>;
  /** Everything written so far is durable and resumable. */
  checkpoint(position: number): Promise<void>;
  /** The export finished: no resume state is left behind. */
  finish(): Promise<void>;
  close(): Promise<void>;
}

export async function exportRecommendations(store: Store, options: ExportOptions): Promise<ExportReport> {
  const pending = await unappliedMigrations(store);
  if (pending.length > 0) throw new AppError('DATABASE_NOT_READY', `the database lacks ${pending.length} migration(s) (${pending.join(', ')}); run npm run db:migrate first`);
  const started = performance.now();
  const reader = servingReader(store);
  const catalog = new CatalogCache(reader);
  const pool = await InferencePool.start({ workers: options.workers, background: false, log: (message, error) => options.log(error ? `${message}: ${String(error)}` : message) });
  let sink: Sink | undefined;
  const window: { user: ExportUser; answer: Promise<Recommendations> }[] = [];
  try {
    // The rules first: a bad one fails before the model loads.
    await catalog.reload();
    let filters;
    try {
      filters = filtersOf(catalog, options.filters);
    } catch (error) {
      if (error instanceof ProblemError) throw new AppError('USAGE', error.detail);
      throw error;
    }
    const models = new ModelRegistry(store, pool, options.log, () => {});
    await models.sync();
    const recommender = new Recommender(reader, catalog, models, { popularFallback: true, popularWindowDays: 30, userCacheSize: 0, userCacheTtlSeconds: 0 });
    await recommender.start();
    const version = models.current?.version ?? null;
    options.log(version === null ? 'no model version is active: exporting popular items' : `exporting model version ${version}'s recommendations`);
    sink = options.format === 'table' ? await tableSink(store, options) : await fileSink(options);
    const total = options.users === 'all' ? await countUsers(store) : undefined;
    let done = 0;
    let skipped = 0;
    let interrupted = false;
    let chunk: ExportedUser[] = [];
    const flush = async (): Promise<void> => {
      if (chunk.length === 0) return;
      await sink!.write(chunk);
      await sink!.checkpoint(chunk[chunk.length - 1]!.user.position);
      done += chunk.length;
      chunk = [];
      options.onProgress?.(done + skipped, total);
    };
    const settleOldest = async (): Promise<void> => {
      const { user, answer } = window.shift()!;
      chunk.push({ user, result: await answer });
      if (chunk.length >= (options.chunkUsers ?? CHUNK)) await flush();
    };
    for await (const user of usersOf(store, options.users)) {
      if (user.position <= sink.resumeAfter) {
        skipped++;
        continue;
      }
      if (options.signal?.aborted) {
        interrupted = true;
        break;
      }
      window.push({ user, answer: recommender.forUser(user.externalId, options.k, filters) });
      if (window.length >= WINDOW) await settleOldest();
    }
    while (window.length > 0) {
      if (options.signal?.aborted) {
        interrupted = true;
        break;
      }
      await settleOldest();
    }
    await flush(); // an ordered prefix either way: a resume continues after it
    if (!interrupted) await sink.finish();
    const seconds = (performance.now() - started) / 1000;
    const peakRssMb = Math.round(process.resourceUsage().maxRSS / 1024);
    return { users: done, skippedBefore: skipped, seconds, usersPerSecond: done / seconds, modelVersion: version, interrupted, output: options.output, peakRssMb };
  } finally {
    // Answers still in flight after an interruption or a failure are dropped (a resume asks again); they must not outlive the pool.
    await Promise.allSettled(window.map((w) => w.answer));
    await sink?.close();
    await pool.close();
    reader.close();
  }
}

async function countUsers(store: Store): Promise<number> {
  return store.prisma.user.count();
}

/** The users to export, in order, with their positions. */
async function* usersOf(store: Store, users: ExportOptions['users']): AsyncGenerator<ExportUser> {
  if (users === 'all') {
    for (let after = 0; ; ) {
      const page = await store.prisma.user.findMany({ where: { id: { gt: after } }, orderBy: { id: 'asc' }, take: PAGE, select: { id: true, externalId: true } });
      for (const u of page) yield { position: u.id, externalId: u.externalId };
      if (page.length < PAGE) return;
      after = page[page.length - 1]!.id;
    }
  }
  const lines = createInterface({ input: createReadStream(users.file, 'utf8'), crlfDelay: Infinity });
  let line = 0;
  for await (const text of lines) {
    line++;
    const id = text.trim();
    if (id !== '') yield { position: line, externalId: id };
  }
}

/** What an export row holds of each item. */
function exportedItems(result: Recommendations): { item: string; probability: number; score: number }[] {
  return result.items.map((i) => ({ item: i.item, probability: i.probability, score: i.score }));
}

/**
 * The parameters a resumed export must share with the run it continues: the same users, k, format and rules
 * (else the file would mix two exports).
 */
function fingerprint(options: ExportOptions): string {
  const { users, k, format, filters } = options;
  return createHash('sha256')
    .update(JSON.stringify({ users: users === 'all' ? 'all' : users.file, k, format, filters }))
    .digest('hex')
    .slice(0, 16);
}

interface FileState {
  readonly fingerprint: string;
  readonly position: number;
  readonly bytes: number;
}

async function fileSink(options: ExportOptions): Promise<Sink> {
  const { output } = options;
  const statePath = `${output}.export-state.json`;
  const print = fingerprint(options);
  let resumeAfter = 0;
  let handle: FileHandle;
  if (existsSync(output) && options.resume) {
    if (!existsSync(statePath)) throw new AppError('EXPORT_NOT_RESUMABLE', `${output} has no resume state (${statePath}): it finished, or was not written by an export; use --overwrite to start again`);
    const state = JSON.parse(readFileSync(statePath, 'utf8')) as FileState;
    if (state.fingerprint !== print) throw new AppError('EXPORT_NOT_RESUMABLE', `${output} was exported with other users, k, format or rules; use --overwrite to start again`);
    // Anything written after the last checkpoint is cut off and written again.
    if (statSync(output).size > state.bytes) truncateSync(output, state.bytes);
    resumeAfter = state.position;
    handle = await open(output, 'a');
    options.log(`resuming ${output} after position ${resumeAfter}`);
  } else {
    if (existsSync(output) && !options.overwrite) throw new AppError('EXPORT_EXISTS', `${output} exists; use --overwrite to replace it${existsSync(statePath) ? ' or --resume to continue it' : ''}`);
    handle = await open(output, 'w');
    if (options.format === 'csv') await handle.write('user_id,rank,item,probability,score\n');
  }
  let bytes = (await handle.stat()).size;
  return {
    resumeAfter,
    async write(rows) {
      const text = rows.map((row) => (options.format === 'csv' ? csvLines(row) : jsonLine(row))).join('');
      await handle.write(text);
      bytes += Buffer.byteLength(text);
    },
    async checkpoint(position) {
      await handle.sync();
      // Written whole, then renamed: a crash leaves the old state or the new, never half of one.
      writeFileSync(`${statePath}.tmp`, JSON.stringify({ fingerprint: print, position, bytes } satisfies FileState));
      renameSync(`${statePath}.tmp`, statePath);
    },
    async finish() {
      rmSync(statePath, { force: true });
    },
    async close() {
      await handle.close();
    },
  };
}

function jsonLine({ user, result }: ExportedUser): string {
  return `${JSON.stringify({ user: user.externalId, strategy: result.strategy, modelVersion: result.modelVersion, items: exportedItems(result) })}\n`;
}

function csvLines({ user, result }: ExportedUser): string {
  return result.items.map((i, r) => `${csvField(user.externalId)},${r + 1},${csvField(i.item)},${i.probability},${i.score}\n`).join('');
}

function csvField(value: string): string {
  return /[",\r\n]/.test(value) ? `"${value.replace(/"/g, '""')}"` : value;
}

async function tableSink(store: Store, options: ExportOptions): Promise<Sink> {
  const name = options.output;
  const prisma = store.prisma;
  const existing = await prisma.recommendationExport.aggregate({ where: { exportName: name }, _max: { position: true }, _count: true });
  let resumeAfter = 0;
  if (existing._count > 0) {
    if (options.resume) {
      resumeAfter = existing._max.position ?? 0;
      options.log(`resuming export '${name}' after position ${resumeAfter}`);
    } else if (options.overwrite) {
      await prisma.recommendationExport.deleteMany({ where: { exportName: name } });
    } else {
      throw new AppError('EXPORT_EXISTS', `recommendation_exports already holds an export named '${name}' (${existing._count} users); use --overwrite to replace it or --resume to continue it`);
    }
  }
  return {
    resumeAfter,
    async write(rows) {
      // One transaction per chunk: the rows of a chunk are all stored or none, and position orders the resume.
      await prisma.recommendationExport.createMany({
        data: rows.map(({ user, result }) => ({ exportName: name, position: user.position, userId: user.externalId, strategy: result.strategy, modelVersion: result.modelVersion, items: toJsonValue(exportedItems(result)) })),
      });
    },
    async checkpoint() {},
    async finish() {},
    async close() {},
  };
}
