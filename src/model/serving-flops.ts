import type { ModelConfig } from './config.js';

/**
 * Floating-point operations (a multiply-add counts 2) to serve one history of
 * `length` events with last-position inference: every block but the last runs
 * at every position (the next block's keys and values need them); the last
 * block computes keys and values at every position but its query, attention
 * row, output projection and feed-forward at the last position only; then the
 * history's query is scored against the whole catalogue (`numItems` rows of
 * the members' tables side by side). Layer norms, biases and the softmax are
 * left out: they are O(length · dim), next to O(length · dim²).
 */
export function servingFlops(config: Pick<ModelConfig, 'dim' | 'ffnDim' | 'blocks' | 'itemBias'>, members: number, length: number, numItems: number): { network: number; scoring: number; total: number } {
  const { dim: d, ffnDim: f, blocks } = config;
  const T = length;
  // A full block: Q, K, V and output projections, causal attention (position t reads t + 1 keys, twice: scores and context), feed-forward.
  const fullBlock = 4 * 2 * T * d * d + 2 * 2 * d * ((T * (T + 1)) / 2) + 2 * 2 * T * d * f;
  // The last block: K and V everywhere; Q, one attention row, output projection and feed-forward at the last position.
  const lastBlock = 2 * 2 * T * d * d + 2 * 2 * d * d + 2 * 2 * d * T + 2 * 2 * d * f;
  const network = members * ((blocks - 1) * fullBlock + lastBlock);
  const width = members * (d + (config.itemBias ? 1 : 0));
  const scoring = 2 * numItems * width;
  return { network, scoring, total: network + scoring };
}
