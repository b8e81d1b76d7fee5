import { loadSequences, recentlyActiveFirst } from '../data/sequences.js';
import type { Store } from '../data/store.js';
import { expectedHeader, memoPath, writeMemo, type MemoEntry } from '../model/representation-memo.js';
import { ServedModel, type ScoringMode } from '../model/served-model.js';

/** Users stored at most, most recently active first (the API's default user cache holds as many). */
export const STORED_USERS = 100_000;
/** Histories per ServedModel.represent call. */
const BATCH = 64;

export interface StoredRepresentations {
  /** Distinct histories stored (shoppers with the same history share one). */
  readonly users: number;
  readonly seconds: number;
  readonly path: string;
}

/**
 * Computes every user's representation under a freshly written version, as
 * the API computes it (ServedModel, the same kernels and scoring mode), and
 * stores them beside the artifact (src/model/representation-memo.ts): a server
 * that starts with, or activates, the version fills its user cache from them
 * instead of a forward pass and a catalogue scan per shopper. Histories are
 * the store's whole per-user histories, read now, as the server's warm-up
 * reads them; a shopper whose history changes later is computed when met.
 */
export async function storeRepresentations(
  store: Store,
  version: { readonly id: number; readonly createdAt: Date; readonly artifactPath: string },
  options: { readonly scoring?: ScoringMode; readonly onProgress?: (done: number, total: number) => void } = {},
): Promise<StoredRepresentations> {
  const scoring = options.scoring ?? 'quantised';
  const started = performance.now();
  const model = ServedModel.load(version.id, version.createdAt, version.artifactPath, { scoring });
  try {
    const sequences = await loadSequences(store, { by: 'user' });
    const histories = recentlyActiveFirst(sequences, STORED_USERS)
      .map((s) => model.encode(sequences.items.subarray(sequences.offsets[s]!, sequences.offsets[s + 1]!), sequences.types.subarray(sequences.offsets[s]!, sequences.offsets[s + 1]!)))
      .filter((h) => h.items.length > 0);
    const entries: MemoEntry[] = [];
    for (let from = 0; from < histories.length; from += BATCH) {
      const batch = histories.slice(from, from + BATCH);
      model.represent(batch).forEach((representation, i) => entries.push({ encoded: batch[i]!, representation }));
      options.onProgress?.(entries.length, histories.length);
    }
    const path = memoPath(version.artifactPath, model.scoring);
    const users = writeMemo(path, expectedHeader(model), entries);
    return { users, seconds: (performance.now() - started) / 1000, path };
  } finally {
    model.retire();
  }
}
