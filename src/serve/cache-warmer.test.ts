import { expect, it } from 'vitest';
import { CacheWarmer, WARM_PACE } from './cache-warmer.js';
import type { InferencePool } from './inference-pool.js';
import type { PooledModel } from './pooled-model.js';
import type { Recommender } from './recommender.js';

it('paces every warm-up, after a start as beside the serving version, unless told otherwise', async () => {
  const paces: number[] = [];
  const pool = {
    warm: (_version: number, _url: string | undefined, _limit: number, _onUsers: unknown, pace = 0) => {
      paces.push(pace);
      return { done: Promise.resolve(0), stop: () => {} };
    },
  } as unknown as InferencePool;
  const recommender = { currentEpoch: 0, prepareNext: () => {}, primeWarmed: () => 0, dropNext: () => {} } as unknown as Recommender;
  const model = (version: number) => ({ version, acquire: () => {}, release: () => {} }) as unknown as PooledModel;
  const warmer = new CacheWarmer(pool, undefined, recommender, 100, () => {});
  await warmer.warm(model(1));
  await warmer.prewarm(model(2), 5);
  await warmer.warm(model(3), 0);
  expect(WARM_PACE).toBeGreaterThan(0);
  expect(paces).toEqual([WARM_PACE, WARM_PACE, 0]);
});
