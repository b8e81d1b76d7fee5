import type { ServingReader } from '../data/serving-reader.js';
import type { ExperimentRegistry } from './experiments.js';
import type { RetrainSchedule } from './retrain-schedule.js';
import type { Store } from '../data/store.js';
import type { Attributor } from './attributor.js';
import type { Authenticator } from './auth.js';
import type { BulkGovernor } from './bulk-governor.js';
import type { CacheWarmer } from './cache-warmer.js';
import type { CatalogCache } from './catalog-cache.js';
import type { ImpressionRecorder } from './impression-recorder.js';
import type { InferencePool } from './inference-pool.js';
import type { ServeConfig } from './config.js';
import type { ServeMetrics } from './metrics.js';
import type { ModelRegistry } from './model-registry.js';
import type { RateLimiter } from './rate-limit.js';
import type { Recommender } from './recommender.js';

/** Everything a route handler may use; built once by the server. */
export interface ServeContext {
  readonly config: ServeConfig;
  readonly store: Store;
  readonly reader: ServingReader;
  readonly catalog: CatalogCache;
  readonly models: ModelRegistry;
  readonly pool: InferencePool;
  readonly recommender: Recommender;
  readonly warmer: CacheWarmer;
  /** Gives recommendation responses their recommendationId and records what they showed. */
  readonly impressions: ImpressionRecorder;
  /** The running experiments, by route (assignment of shoppers to variants). */
  readonly experiments: ExperimentRegistry;
  /** Attributes stored events to the responses that showed their items, in the background. */
  readonly attributor: Attributor;
  /** Scheduled and requested retrains (npm run retrain). */
  readonly retrain: RetrainSchedule;
  readonly metrics: ServeMetrics;
  /** Live requests first: bulk event batches wait while live requests are slow. */
  readonly bulk: BulkGovernor;
  readonly auth: Authenticator;
  readonly limiter: RateLimiter | undefined;
  readonly log: (message: string, error?: unknown) => void;
  readonly lifecycle: { shuttingDown: boolean };
  /** This process among the replicas on one database (its events notices carry it; see src/data/event-notifications.ts). */
  readonly replicaId: string;
}
