import { markActiveVersion } from '../data/model-versions.js';
import type { Store } from '../data/store.js';
import { AppError } from '../errors.js';
import type { InferencePool } from './inference-pool.js';
import { PooledModel } from './pooled-model.js';
import { VersionStatusSchema, type ModelVersionSummary } from './responses.js';

export type { ModelVersionSummary } from './responses.js';

/**
 * Which trained version serves. Activation loads the new artifact completely
 * (in every inference worker) and lets `beforeSwap` prepare for it (the
 * server warms the user cache for it meanwhile) before anything changes, then flips the
 * `active` row in one transaction and swaps the in-memory pointer: requests
 * already running finish on the model they started with (see
 * PooledModel.acquire), new ones get the new model, none fails. A version
 * whose artifact does not load is refused and the current one keeps
 * serving. `sync()` follows activations made elsewhere (another replica, a
 * training job) and is run on a timer by the server.
 */
export class ModelRegistry {
  private current_: PooledModel | undefined;
  private syncing: Promise<void> | undefined;
  /** Last load failure per version, so a broken active version is not reloaded on every poll. */
  private readonly failed = new Map<number, string>();

  constructor(
    private readonly store: Store,
    private readonly pool: InferencePool,
    private readonly log: (message: string) => void,
    private readonly onSwap: (model: PooledModel | undefined) => void = () => {},
    /** Runs between every new version's load and its swap, while the current version (if any) serves: the server reads the catalogue and pre-warms the user cache; `abandon` if it never swaps. */
    private readonly beforeSwap: { prepare(model: PooledModel): Promise<void>; abandon(model: PooledModel): void } = { prepare: async () => {}, abandon: () => {} },
  ) {}

  get current(): PooledModel | undefined {
    return this.current_;
  }

  /** Loads the version marked active in the database if it is not the one serving. */
  async sync(): Promise<void> {
    this.syncing ??= this.syncOnce().finally(() => (this.syncing = undefined));
    return this.syncing;
  }

  private async syncOnce(): Promise<void> {
    const row = await this.store.prisma.modelVersion.findFirst({ where: { active: true }, select: { id: true, createdAt: true, artifactPath: true } });
    if (!row || row.id === this.current_?.version || this.failed.has(row.id)) return;
    let model: PooledModel | undefined;
    try {
      model = await PooledModel.load(this.pool, row.id, row.createdAt, row.artifactPath);
      await this.beforeSwap.prepare(model);
      this.swap(model);
      this.log(`model version ${row.id} loaded (active in the database)`);
    } catch (error) {
      if (model) {
        this.beforeSwap.abandon(model);
        model.retire();
      }
      this.failed.set(row.id, (error as Error).message);
      this.log(`model version ${row.id} is active in the database but cannot be loaded; ${this.current_ ? `version ${this.current_.version} keeps serving` : 'no model serves'}: ${(error as Error).message}`);
    }
  }

  async activate(version: number): Promise<PooledModel> {
    const row = await this.readyRow(version);
    if (this.current_?.version === version) {
      await markActiveVersion(this.store, version);
      return this.current_;
    }
    const model = await PooledModel.load(this.pool, row.id, row.createdAt, row.artifactPath); // throws ARTIFACT_CORRUPT before anything changed
    try {
      await this.beforeSwap.prepare(model);
      await markActiveVersion(this.store, version);
    } catch (error) {
      this.beforeSwap.abandon(model);
      model.retire();
      throw error;
    }
    this.failed.delete(version);
    this.swap(model);
    this.log(`model version ${version} activated`);
    return model;
  }

  async list(): Promise<ModelVersionSummary[]> {
    const rows = await this.store.prisma.modelVersion.findMany({ orderBy: { id: 'desc' } });
    return rows.map((row) => {
      const config = (row.config ?? {}) as { backend?: unknown };
      const metrics = (row.metrics ?? {}) as { test?: unknown };
      return {
        version: row.id,
        // The migrations CHECK the column against the schema's statuses; Prisma types it as a string.
        status: VersionStatusSchema.catch('failed').parse(row.status),
        active: row.active,
        loaded: row.id === this.current_?.version,
        createdAt: row.createdAt.toISOString(),
        dataHash: row.dataHash,
        backend: typeof config.backend === 'string' ? config.backend : null,
        test: metrics.test && typeof metrics.test === 'object' ? (metrics.test as Record<string, unknown>) : null,
      };
    });
  }

  /**
   * A version for attention inspection and comparison: the serving one by
   * default, or any ready version, loaded in the workers on demand and kept
   * among the two most recently asked for. Release it when done. An analyst
   * waits for the load, so it is built on a live worker (an urgent load).
   */
  async acquireInspectable(version?: number): Promise<PooledModel | undefined> {
    const current = this.current_;
    if (version === undefined || version === current?.version) return current?.acquire();
    const cached = this.others.get(version);
    if (cached) {
      this.others.delete(version);
      this.others.set(version, cached);
      return cached.acquire();
    }
    const row = await this.readyRow(version);
    const model = this.others.get(version) ?? (await PooledModel.load(this.pool, row.id, row.createdAt, row.artifactPath, { urgent: true }));
    this.others.set(version, model);
    while (this.others.size > 2) {
      const [oldest, evicted] = this.others.entries().next().value as [number, PooledModel];
      this.others.delete(oldest);
      evicted.retire();
    }
    return model.acquire();
  }

  private readonly others = new Map<number, PooledModel>();

  /** Stops serving: the current model is freed once its requests finish. */
  close(): void {
    this.current_?.retire();
    this.current_ = undefined;
    for (const model of this.others.values()) model.retire();
    this.others.clear();
  }

  /** The version's row, which must exist and be ready. */
  private async readyRow(version: number): Promise<{ id: number; createdAt: Date; artifactPath: string }> {
    const row = await this.store.prisma.modelVersion.findUnique({ where: { id: version }, select: { id: true, status: true, createdAt: true, artifactPath: true } });
    if (!row) throw new AppError('MODEL_VERSION_NOT_FOUND', `model version ${version} does not exist`);
    if (row.status !== 'ready') throw new AppError('MODEL_VERSION_NOT_READY', `model version ${version} is '${row.status}', not 'ready'`, { versionStatus: row.status });
    return row;
  }

  private swap(model: PooledModel): void {
    const previous = this.current_;
    this.current_ = model;
    this.onSwap(model);
    previous?.retire();
  }
}
