import { inputLengths, leaveOneOutSplit } from '../data/leave-one-out-split.js';
import { hashSequences, loadSequences, type SequenceSet } from '../data/sequences.js';
import type { Store } from '../data/store.js';
import { AppError } from '../errors.js';
import { ServedModel, type ModelHistory } from '../model/served-model.js';
import { ItemVocabulary } from '../model/vocabulary.js';
import { evaluateScorer, type BatchScorer, type Evaluation } from './evaluate.js';

/** Which events make up the histories (absent: all of them). */
export interface EventWindow {
  readonly since?: Date;
  readonly maxEventsPerUser?: number;
}

export interface WindowEvaluation {
  /** The histories' snapshot hash (as a version trained on exactly them records it). */
  readonly dataHash: string;
  readonly users: number;
  /** Items with events in the window: the catalogue every version is ranked over. */
  readonly items: number;
  readonly versions: readonly {
    readonly versionId: number;
    /** The version as served (network and co-occurrence term), full ranking. */
    readonly model: Evaluation;
    /** Held-out items this version never saw: counted as misses. */
    readonly unknownTargets: number;
  }[];
}

/**
 * Ranks several ready versions on one leave-one-out split of the same
 * histories, so their metrics compare like for like even when the versions
 * were trained on different snapshots (a retrained version against the one it
 * would replace).
 *
 * Every version ranks the window's items (those with an event in it). A
 * version's input leaves out the items it does not know (as the API does);
 * a held-out item it does not know cannot be recommended by it, so it is a
 * miss. Items only a version knows (no event in the window) are not ranked.
 * Scores come from the served path (ServedModel), the one the API uses.
 */
export async function evaluateVersionsOnWindow(
  store: Store,
  versionIds: readonly number[],
  options: { readonly window?: EventWindow; readonly phase?: 'valid' | 'test' } = {},
): Promise<WindowEvaluation> {
  const rows = await Promise.all(
    versionIds.map(async (id) => {
      const row = await store.prisma.modelVersion.findUnique({ where: { id }, select: { id: true, status: true, createdAt: true, artifactPath: true } });
      if (!row) throw new AppError('MODEL_VERSION_NOT_FOUND', `there is no model version ${id}`);
      if (row.status !== 'ready') throw new AppError('MODEL_VERSION_NOT_READY', `model version ${id} is ${row.status}, not ready`);
      return row;
    }),
  );
  const window = options.window ?? {};
  const sequences = await loadSequences(store, {
    ...(window.since !== undefined && { since: window.since }),
    ...(window.maxEventsPerUser !== undefined && { maxPerOwner: window.maxEventsPerUser }),
  });
  const catalogue = ItemVocabulary.fromItems(sequences.items);
  const data = { offsets: sequences.offsets, items: catalogue.encode(sequences.items), types: sequences.types };
  const split = leaveOneOutSplit(sequences.offsets);
  if (split.evaluated.length === 0) throw new AppError('NO_EVALUATION_DATA', 'no user in the window has the 4 events the leave-one-out protocol needs');
  const phase = options.phase ?? 'test';
  const versions = rows.map((row) => {
    const served = ServedModel.load(row.id, row.createdAt, row.artifactPath);
    try {
      const toVersion = new Int32Array(catalogue.size + 1);
      for (let i = 1; i <= catalogue.size; i++) toVersion[i] = served.vocabulary.indexOf(catalogue.itemAt(i));
      let unknownTargets = 0;
      for (const s of split.evaluated) {
        const target = data.items[sequences.offsets[s]! + inputLengths(split, phase)[s]!]!;
        if (toVersion[target] === 0) unknownTargets++;
      }
      const model = evaluateScorer(windowScorer(served, sequences, toVersion), catalogue.size, data, split, { phase });
      return { versionId: row.id, model, unknownTargets };
    } finally {
      served.retire();
    }
  });
  return { dataHash: hashSequences(sequences), users: split.evaluated.length, items: catalogue.size, versions };
}

/** Scores over the window's catalogue: the version's own scores, -Infinity for items it does not know. */
function windowScorer(served: ServedModel, sequences: SequenceSet, toVersion: Int32Array): BatchScorer {
  const width = toVersion.length;
  return (batch, inputLength) => {
    const out = new Float32Array(batch.length * width).fill(-Infinity);
    const histories: ModelHistory[] = [];
    const rows: number[] = [];
    batch.forEach((s, b) => {
      const begin = sequences.offsets[s]!;
      const end = begin + inputLength(s);
      const history = served.encode(sequences.items.subarray(begin, end), sequences.types.subarray(begin, end));
      // A history of items the version never saw gives it nothing to go on: every item stays at -Infinity, a miss.
      if (history.items.length === 0) return;
      histories.push(history);
      rows.push(b);
    });
    if (histories.length === 0) return out;
    served.states(histories).forEach((state, h) => {
      const scores = served.scores(state);
      const row = rows[h]! * width;
      for (let i = 1; i < width; i++) {
        const v = toVersion[i]!;
        if (v !== 0) out[row + i] = scores[v]!;
      }
    });
    return out;
  };
}
