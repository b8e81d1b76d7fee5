import { topIndices } from '../model/beam-search.js';
import type { ModelHistory, ServedModel } from '../model/served-model.js';
import { attentionRollout } from './rollout.js';

/** One event of the history being explained, as the shop knows it. */
export interface ExplainedEvent {
  /** Internal item id (from the store or the catalogue). */
  readonly itemId: number;
  readonly type: number;
  /** Milliseconds since the epoch, or null for inline sessions without times. */
  readonly ts: number | null;
}

export interface Explanation {
  /** Indices into the input events of the positions the model read, oldest first (known items, the last maxLength). */
  readonly positions: number[];
  /** Input events left out: items the model does not know, and events before its window. */
  readonly ignored: { readonly unknownItems: number; readonly beyondWindow: number };
  /** Top-k next items (model indices), their probabilities and logits. */
  readonly predictions: { readonly index: number; readonly probability: number; readonly score: number }[];
  /** The item the leave-one-out attribution explains (model index) and its probability. */
  readonly target: { readonly index: number; readonly probability: number };
  /** Per layer [heads, T, T] (row = the position attending); an ensemble's members one after another. */
  readonly layers: Float32Array[];
  /** Ensemble members (1 for a single model) and attention blocks per member: layers = members × blocks. */
  readonly members: number;
  readonly blocks: number;
  readonly heads: number;
  /** Rollout from the last position to every position, summing to 1 (an ensemble's: the members' mean). */
  readonly rollout: Float64Array;
  /**
   * Per position: the target's probability with that event removed, and the
   * drop from the full history's (positive: the event supports the
   * prediction). Null when removing it leaves no history.
   */
  readonly leaveOneOut: ({ readonly without: number; readonly drop: number } | null)[];
}

/**
 * Why the model predicts what it does for one history: its attention in
 * every layer and head, the rollout through the layers, and leave-one-out
 * attribution for a target item — each history event removed in turn, all
 * T shortened histories scored in one batched forward pass.
 */
export function explain(model: ServedModel, events: readonly ExplainedEvent[], options: { k: number; target?: number; keep?: (index: number) => boolean }): Explanation | null {
  const positions: number[] = [];
  let unknownItems = 0;
  for (let i = 0; i < events.length; i++) {
    if (model.vocabulary.indexOf(events[i]!.itemId) === 0) unknownItems++;
    else positions.push(i);
  }
  const beyondWindow = Math.max(0, positions.length - model.config.maxLength);
  positions.splice(0, beyondWindow);
  if (positions.length === 0) return null;
  const history = model.encode(
    positions.map((i) => events[i]!.itemId),
    positions.map((i) => events[i]!.type),
  );
  const T = history.items.length;
  const { state, layers } = model.attention(history);
  const scores = model.scores(state).slice();
  const z = state.logNormaliser;
  const best = topIndices(scores, options.k, (i) => i !== 0 && (options.keep?.(i) ?? true));
  const target = options.target ?? best[0] ?? 1;
  const probability = Math.exp(scores[target]! - z);

  // Leave-one-out: T histories of T - 1 events in one batch (each keeps its own positions' order).
  const shortened: ModelHistory[] = [];
  for (let drop = 0; drop < T; drop++) {
    if (T === 1) break;
    shortened.push({ items: history.items.filter((_, j) => j !== drop), types: history.types.filter((_, j) => j !== drop) });
  }
  const states = model.states(shortened);
  const leaveOneOut = Array.from({ length: T }, (_, j) => {
    const s = states[j];
    if (!s) return null;
    const without = Math.exp(model.scores(s)[target]! - s.logNormaliser);
    return { without, drop: probability - without };
  });

  return {
    positions,
    ignored: { unknownItems, beyondWindow },
    predictions: best.map((index) => ({ index, probability: Math.exp(scores[index]! - z), score: scores[index]! })),
    target: { index: target, probability },
    layers,
    members: model.members,
    blocks: model.config.blocks,
    heads: model.config.heads,
    rollout: ensembleRollout(layers, model.members, model.config.blocks, model.config.heads, T),
    leaveOneOut,
  };
}

/** Each member's rollout through its own blocks, averaged over the members (their predictions are averaged too). */
function ensembleRollout(layers: readonly Float32Array[], members: number, blocks: number, heads: number, T: number): Float64Array {
  const mean = new Float64Array(T);
  for (let m = 0; m < members; m++) {
    const rollout = attentionRollout(layers.slice(m * blocks, (m + 1) * blocks), heads, T);
    for (let s = 0; s < T; s++) mean[s] = mean[s]! + rollout[s]! / members;
  }
  return mean;
}
