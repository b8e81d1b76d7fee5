import { setImmediate as nextTurn } from 'node:timers/promises';
import { parentPort, workerData } from 'node:worker_threads';
import { loadSequences, recentlyActiveFirst } from '../data/sequences.js';
import { externalUserIds } from '../data/serving-reader.js';
import { openStore, type Store } from '../data/store.js';
import type { CatalogItem } from '../data/serving-reader.js';
import { isAppError } from '../errors.js';
import { inspectHistory } from '../inspect/inspect-history.js';
import { ServedModel, type ScoringMode, type SharedVersion } from '../model/served-model.js';
import { RepresentationMemo, expectedHeader, isMismatch, memoPath } from '../model/representation-memo.js';
import type { WarmedUser, WarmOutcome, WorkerReply, WorkerRequest } from './inference-protocol.js';

/**
 * An inference worker thread of the API (see InferencePool): it holds the
 * loaded model versions and answers requests one at a time, in order,
 * except that a version being loaded is built in pieces with requests
 * answered in between (ServedModel.loadPausing). A
 * background worker (started with workerData.nice) builds each version's tables for
 * the live workers to copy (a load with `share`) and warms the user cache, at
 * the lowest scheduling priority the OS gives a thread (set by the entry,
 * inference-worker.mjs, before the thread loads anything), so both run on
 * capacity that live requests leave idle.
 */
const port = parentPort!;
const scoring = (workerData as { scoring?: ScoringMode } | undefined)?.scoring ?? 'quantised';
const models = new Map<number, ServedModel>();
/** Versions being loaded (ServedModel.loadPausing): a second load of one waits for the first. */
const loads = new Map<number, Promise<ServedModel>>();
let store: Store | undefined;
let warming: number | undefined;
/** Users per 'warmed' message read from a memo (computed ones go request.chunk at a time). */
const MEMO_CHUNK = 64;
let catalog = { byInternalId: (_id: number): CatalogItem | undefined => undefined, byExternalId: (_id: string): CatalogItem | undefined => undefined };

port.on('message', (request: WorkerRequest) => {
  void handle(request);
});

async function handle(request: WorkerRequest): Promise<void> {
  try {
    const result = await answer(request);
    if (result instanceof Float32Array) reply({ type: 'reply', id: request.id, ok: true, result }, [result.buffer as ArrayBuffer]);
    else reply({ type: 'reply', id: request.id, ok: true, result });
  } catch (error) {
    reply({ type: 'reply', id: request.id, ok: false, ...(isAppError(error) && { code: error.code, details: error.details }), message: (error as Error).message ?? String(error) });
  }
}

function reply(message: WorkerReply, transfer: ArrayBuffer[] = []): void {
  port.postMessage(message, transfer);
}

async function answer(request: WorkerRequest): Promise<unknown> {
  switch (request.type) {
    case 'load': {
      if (models.has(request.version)) return null;
      // Built in pieces: this thread answers requests for the versions it already holds in between.
      let loading = loads.get(request.version);
      let shared: Promise<SharedVersion | undefined> | undefined;
      if (!loading) {
        const [version, createdAt, pause] = [request.version, new Date(request.createdAt), () => nextTurn()];
        if (request.share) {
          const both = ServedModel.loadSharing(version, createdAt, request.artifactPath, pause, { scoring });
          // A failed load is reported through `loading`.
          [loading, shared] = [both.then((b) => b.model), both.then((b) => b.shared, () => undefined)];
        } else loading = ServedModel.loadPausing(version, createdAt, request.artifactPath, pause, { scoring, from: request.from });
        loading = loading.finally(() => loads.delete(version));
        loads.set(version, loading);
      }
      const served = await loading;
      models.set(request.version, served);
      // A second load of a version already loading has nothing to share: the pool then loads the others from the files.
      return (await shared) ?? null;
    }
    case 'unload':
      // An unload that overtakes its version's load (a failed activation elsewhere) waits for it, or the version would stay.
      await loads.get(request.version)?.catch(() => undefined);
      models.get(request.version)?.retire();
      models.delete(request.version);
      return null;
    case 'represent':
      return model(request.version).represent(request.histories, request.shortlist);
    case 'log-probs': {
      const served = model(request.version);
      const rows = served.numItems + 1;
      const out = new Float32Array(request.histories.length * rows);
      served.represent(request.histories, 1).forEach(({ state }, b) => {
        const scores = served.scores(state);
        for (let i = 0; i < rows; i++) out[b * rows + i] = scores[i]! - state.logNormaliser;
      });
      return out;
    }
    case 'scores':
      return model(request.version).scores({ query: request.query, items: request.items, logNormaliser: 0 }).slice();
    case 'similarities':
      return model(request.version).similarities(request.index).slice();
    case 'catalog': {
      const byId = new Map(request.items.map((item) => [item.id, item]));
      const byExternal = new Map(request.items.map((item) => [item.externalId, item]));
      catalog = { byInternalId: (id) => byId.get(id), byExternalId: (id) => byExternal.get(id) };
      return null;
    }
    case 'inspect':
      return inspectHistory(model(request.version), catalog, new Map(request.typeNames), request.events, request.options);
    case 'warm':
      return warm(request);
    case 'stop-warm':
      warming = undefined;
      return null;
  }
}

function model(version: number): ServedModel {
  const served = models.get(version);
  if (!served) throw new Error(`model version ${version} is not loaded in this worker`);
  return served;
}

/**
 * Reads every user's history (whole: the filters read all of it), most
 * recently active first, up to `limit`, and sends their representations in
 * chunks. A newer warm or stop-warm ends it between chunks.
 */
async function warm(request: Extract<WorkerRequest, { type: 'warm' }>): Promise<WarmOutcome> {
  warming = request.id;
  try {
    // The background worker holds a version only while it warms for it.
    await answer({ type: 'load', id: request.id, version: request.version, createdAt: request.createdAt, artifactPath: request.artifactPath });
    return await warmLoaded(request);
  } finally {
    if (warming === request.id) warming = undefined;
    // No newer warm-up has started: nothing here is needed until the next one.
    if (warming === undefined) {
      for (const served of models.values()) served.retire();
      models.clear();
    }
  }
}

async function warmLoaded(request: Extract<WorkerRequest, { type: 'warm' }>): Promise<WarmOutcome> {
  store ??= openStore(request.databaseUrl);
  const sequences = await loadSequences(store, { by: 'user' });
  const order = recentlyActiveFirst(sequences, request.limit);
  const externalIds = await externalUserIds(store, order.map((s) => sequences.owners[s]!));
  const first = models.get(request.version);
  if (warming !== request.id || !first) return { users: 0, fromMemo: 0, memo: 'stopped' };
  const users = order.flatMap((s): Omit<WarmedUser, 'representation'>[] => {
    const externalId = externalIds.get(sequences.owners[s]!);
    if (externalId === undefined) return [];
    const [a, b] = [sequences.offsets[s]!, sequences.offsets[s + 1]!];
    const items = sequences.items.slice(a, b);
    const types = Int32Array.from(sequences.types.subarray(a, b));
    return [{ externalId, items, types, encoded: first.encode(items, types) }];
  });
  // Users whose history the version's memo holds are filed first, read from it (fast), the rest computed after.
  const header = expectedHeader(first);
  const read = RepresentationMemo.read(memoPath(request.artifactPath, first.scoring), header);
  const memo = read instanceof RepresentationMemo ? read : undefined;
  // Which users it holds first (no copies yet): each chunk's representations are copied out as it goes.
  const hits: Omit<WarmedUser, 'representation'>[] = [];
  const misses: Omit<WarmedUser, 'representation'>[] = [];
  for (const u of users) (memo && u.encoded.items.length > 0 && memo.has(u.encoded) ? hits : misses).push(u);
  const note = read === undefined ? 'none' : isMismatch(read) ? `not used: ${read.reason}` : `${hits.length} of ${users.length} users found among its ${read.size} histories`;
  let sent = 0;
  for (let from = 0; from < hits.length; from += MEMO_CHUNK) {
    if (warming !== request.id || !models.has(request.version)) return { users: sent, fromMemo: sent, memo: note, header };
    const chunk = hits.slice(from, from + MEMO_CHUNK).map((u) => ({ ...u, representation: memo!.get(u.encoded) }));
    reply({ type: 'warmed', id: request.id, version: request.version, total: users.length, fromMemo: true, users: chunk });
    sent += chunk.length;
    // A rest between chunks: the thread that files them serves requests (none before a start listens).
    await new Promise((resolve) => setTimeout(resolve, request.memoRestMs));
  }
  const filedFromMemo = sent;
  for (let from = 0; from < misses.length; from += request.chunk) {
    const served = models.get(request.version);
    if (warming !== request.id || !served) return { users: sent, fromMemo: filedFromMemo, memo: note, header };
    const chunkStarted = performance.now();
    const chunk = misses.slice(from, from + request.chunk);
    const usable = chunk.filter((u) => u.encoded.items.length > 0);
    const represented = served.represent(usable.map((u) => u.encoded));
    const byUser = new Map(usable.map((u, i) => [u, represented[i]!]));
    reply({ type: 'warmed', id: request.id, version: request.version, total: users.length, fromMemo: false, users: chunk.map((u) => ({ ...u, representation: byUser.get(u) })) });
    sent += chunk.length;
    // Let a stop-warm or an unload in between.
    await nextTurn();
    // Resting between chunks (a pre-warm beside a serving version) leaves the cores and the memory bus to live requests.
    if (request.pace > 0) await new Promise((resolve) => setTimeout(resolve, (performance.now() - chunkStarted) * request.pace));
  }
  return { users: sent, fromMemo: filedFromMemo, memo: note, header };
}

