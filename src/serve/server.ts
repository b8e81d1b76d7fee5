import { randomUUID } from 'node:crypto';
import { ExperimentRegistry } from './experiments.js';
import { RetrainSchedule } from './retrain-schedule.js';
import type { Server } from 'node:http';
import type { Express } from 'express';
import type { AddressInfo } from 'node:net';
import type { Redis } from 'ioredis';
import { listenForEvents, type EventsListener } from '../data/event-notifications.js';
import { prepareIngestion } from '../data/ingest-events.js';
import { servingReader } from '../data/serving-reader.js';
import { keepSqliteThreads, storeWalCheckpointer } from '../data/sqlite-writer.js';
import { openStore } from '../data/store.js';
import { unappliedMigrations } from '../data/migrate.js';
import { SERVER_NODE_FLAGS } from '../cli/processes.js';
import { AppError, isAppError } from '../errors.js';
import { createApp } from './app.js';
import { compileValidators } from './validation.js';
import { createExpressServer } from './http-server.js';
import { Attributor, type AttributorOptions } from './attributor.js';
import { Authenticator } from './auth.js';
import { BulkGovernor } from './bulk-governor.js';
import { CacheWarmer } from './cache-warmer.js';
import { CatalogCache } from './catalog-cache.js';
import { ImpressionRecorder, type ImpressionRecorderOptions } from './impression-recorder.js';
import { InferencePool } from './inference-pool.js';
import type { ServeConfig } from './config.js';
import type { ServeContext } from './context.js';
import { ServeMetrics } from './metrics.js';
import { warmUpRequestPath } from './start-up-warm-up.js';
import { ModelRegistry } from './model-registry.js';
import { RateLimiter } from './rate-limit.js';
import { Recommender } from './recommender.js';
import { connectRedis } from './redis-client.js';

export interface RunningServer {
  readonly url: string;
  readonly port: number;
  readonly context: ServeContext;
  /** The Express application (for introspection; requests go through `url`). */
  readonly app: Express;
  /** Graceful stop: refuse new requests, let in-flight ones finish (up to the shutdown timeout), close the database. */
  close(): Promise<void>;
}

export type Logger = (message: string, error?: unknown) => void;

/** Settings below the configuration's level, for tests: the impression writer's batches and timers. */
export interface ServerTuning {
  readonly impressions?: Omit<ImpressionRecorderOptions, 'enabled' | 'retentionDays'>;
  /** The attributor's rounds, settling delay and batches. */
  readonly attribution?: Omit<AttributorOptions, 'enabled' | 'windowMs'>;
  /** The command a retrain runs (default: this checkout's jobs/retrain.ts). */
  readonly retrainCommand?: readonly string[];
}

export const consoleLogger: Logger = (message, error) => {
  const line = { time: new Date().toISOString(), message, ...(error !== undefined && { error: error instanceof Error ? error.message : String(error) }) };
  process.stderr.write(`${JSON.stringify(line)}\n`);
};

/** The longest a start waits before listening for the user cache's stored representations to be filed. */
const START_MEMO_WAIT_SECONDS = 30;

/** The --v8-pool-size the process was started with, if any. */
function v8PoolSize(): string | undefined {
  const flag = process.execArgv.findLast((arg) => arg.startsWith('--v8-pool-size='));
  return flag?.slice('--v8-pool-size='.length);
}

/** Opens the store, loads the catalogue and the active model, and listens. Fails fast with a clear error. */
export async function startServer(config: ServeConfig, log: Logger = consoleLogger, tuning: ServerTuning = {}): Promise<RunningServer> {
  const store = openStore(config.databaseUrl);
  let pending: string[];
  try {
    pending = await unappliedMigrations(store);
  } catch (error) {
    await store.close();
    if (isAppError(error)) throw error;
    throw new AppError('DATABASE_UNAVAILABLE', `cannot reach the database: ${(error as Error).message.split('\n')[0]}`, {}, { cause: error });
  }
  if (pending.length > 0) {
    await store.close();
    throw new AppError('DATABASE_NOT_READY', `the database lacks ${pending.length} migration(s) (${pending.join(', ')}); run npm run db:migrate first`);
  }
  const reader = servingReader(store);
  const catalog = new CatalogCache(reader);
  const metrics = new ServeMetrics();
  const countBatch = (worker: string, histories: number, batches = 1): void => {
    metrics.inferenceHistories.inc({ worker }, histories);
    if (worker !== 'background') metrics.inferenceBatches.inc({ worker }, batches);
  };
  const pool = await InferencePool.start({ workers: config.workers, scoring: config.scoring, background: config.userCacheSize > 0, log, onBatch: countBatch, onLoad: (worker, from) => metrics.modelLoads.inc({ worker, from }) });
  // Each worker's label set exists from the start (at 0), not created by its first batch under traffic.
  for (let worker = 0; worker < config.workers; worker++) countBatch(String(worker), 0, 0);
  if (config.userCacheSize > 0) countBatch('background', 0);
  // glibc keeps up to 8 malloc arenas per core without it, and the workers' freed buffers stay resident (src/cli/processes.ts, SERVER_ENV).
  if (process.platform === 'linux') log(`malloc arenas: ${process.env.MALLOC_ARENA_MAX ?? 'glibc default (set MALLOC_ARENA_MAX=2, as npm start does, to keep resident memory down)'}`);
  // V8's background threads run every isolate's GC and compiles beside the live requests (src/cli/processes.ts, SERVER_NODE_FLAGS).
  log(`V8 platform threads: ${v8PoolSize() ?? `Node's default, 4 (npm start gives ${SERVER_NODE_FLAGS.join(' ')}: fewer of them beside the live requests)`}`);
  log(`inference: ${config.workers} worker thread(s)${config.userCacheSize > 0 ? ' and a background one while the user cache warms' : ''}`);
  let recommender: Recommender | undefined;
  let warmer: CacheWarmer | undefined;
  const models = new ModelRegistry(
    store,
    pool,
    (message) => log(message),
    (model) => {
      metrics.modelVersion.set(model?.version ?? 0);
      recommender?.adopt(model);
      // A version that was pre-warmed keeps its warm-up (finished, or still filing into the adopted cache).
      if (model && !warmer?.warming(model.version)) void warmer?.warm(model);
    },
    {
      prepare: async (model) => {
        // A version may know items imported since the catalogue was read: read it again before it serves, if it changed.
        await catalog.refresh().catch((error: unknown) => log('catalogue reload failed', error));
        // The pre-warm is for a swap under load; with nothing serving yet the version takes over at once.
        if (!models.current || !warmer || config.activationWarmUpSeconds <= 0 || config.userCacheSize <= 0) return;
        const started = performance.now();
        const complete = await warmer.prewarm(model, config.activationWarmUpSeconds);
        log(`user cache ${complete ? 'warmed' : `partly warmed (${recommender?.preparedUsers ?? 0} users)`} for model version ${model.version} before it serves, in ${((performance.now() - started) / 1000).toFixed(1)} s`);
      },
      abandon: (model) => warmer?.cancelPrewarm(model),
    },
  );
  recommender = new Recommender(reader, catalog, models, {
    popularFallback: config.fallback === 'popular',
    popularWindowDays: config.popularWindowDays,
    userCacheSize: config.userCacheSize,
    userCacheTtlSeconds: config.userCacheTtlSeconds,
  }, (hit) => metrics.userCache.inc({ result: hit ? 'hit' : 'miss' }));
  await recommender.start();
  metrics.watchUserCache(recommender);
  warmer = new CacheWarmer(pool, config.databaseUrl, recommender, config.userCacheSize, log);
  await models.sync();
  // Loading the active version read the catalogue (its prepare step); without one, or if that read failed, read it now.
  if (catalog.generation === 0) await catalog.reload();
  if (!models.current) log(`no model version is active; ${config.fallback === 'popular' ? 'serving popular items' : 'recommendation routes answer 503'} until one is activated`);

  // PostgreSQL: other replicas' events invalidate this one's cached users within a notice's round trip.
  const replicaId = randomUUID();
  let listener: EventsListener | undefined;
  let redis: Redis | undefined;
  // Impressions: batched writes off the request path, on the store's write discipline (src/data/impressions.ts).
  const impressions = ImpressionRecorder.forStore(store, (externalId) => catalog.byExternalId(externalId)?.id, metrics, log, {
    batchSize: config.impressionBatch,
    ...tuning.impressions,
    enabled: config.impressions === 'on',
    retentionDays: config.impressionRetentionDays,
  });
  log(
    config.impressions === 'on'
      ? `impressions: recorded in batches${config.impressionRetentionDays > 0 ? `, kept ${config.impressionRetentionDays} days` : ', kept forever'}`
      : 'impressions: off (responses carry a recommendationId; nothing is recorded)',
  );
  const bulk = new BulkGovernor({ targetMs: config.bulkYieldMs, onWait: (seconds, work) => metrics.bulkWaitSeconds.observe({ work }, seconds) });
  metrics.watchBulk(bulk);
  const wal = storeWalCheckpointer(store);
  if (wal) metrics.watchWal(wal);
  bulk.start();
  // Attribution: a background walk over new events by a cursor, batches in one transaction each (src/data/attributions.ts).
  const attributionOn = config.impressions === 'on' && config.attributionWindowSeconds > 0;
  const attributor = Attributor.forStore(store, metrics, log, { pace: (events) => bulk.admit(events, 'attribution'), ...tuning.attribution, enabled: attributionOn, windowMs: config.attributionWindowSeconds * 1000 });
  log(attributionOn ? `attribution: events within ${formatSpan(config.attributionWindowSeconds)} of a response that showed their item, in the background` : 'attribution: off');
  /** Releases what start-up acquired, in reverse order (a failed start and close() alike). */
  let retrain: RetrainSchedule | undefined;
  let releaseThreads: (() => void) | undefined;
  const release = async (): Promise<void> => {
    bulk.close();
    await retrain?.close();
    await attributor.close(config.shutdownTimeoutSeconds * 1000);
    // What is buffered is written before the store closes (given as long as requests in flight were).
    await impressions.close(config.shutdownTimeoutSeconds * 1000);
    releaseThreads?.();
    redis?.disconnect();
    await listener?.close();
    models.close();
    await pool.close();
    reader.close();
    await store.close();
  };
  if (store.provider === 'postgresql') {
    const r = recommender;
    try {
      listener = await listenForEvents(store.target.url, {
        onNotice: (notice) => {
          if (notice.from === replicaId) return;
          r.invalidateUsers(notice.users);
          metrics.replicaNotices.inc();
        },
        onGap: () => r.forgetUsers(),
        log,
      });
    } catch (error) {
      await release();
      throw new AppError('DATABASE_UNAVAILABLE', `cannot listen for other replicas' events: ${(error as Error).message}`, {}, { cause: error });
    }
  }

  // One budget per key shared by the replicas: in Redis where configured, else in PostgreSQL's rate_limits
  // table; on SQLite without Redis it is this process's.
  if (config.rateLimitPerMinute > 0 && config.redisUrl) {
    try {
      redis = await connectRedis(config.redisUrl, log);
    } catch (error) {
      await release();
      throw error;
    }
  }
  const perMinute = config.rateLimitPerMinute;
  const limiter =
    perMinute <= 0
      ? undefined
      : redis
        ? RateLimiter.onRedis(redis, perMinute, 60)
        : store.provider === 'postgresql'
          ? RateLimiter.onPostgres(store.pool, perMinute, 60)
          : RateLimiter.inMemory(perMinute, 60);
  if (limiter) log(`rate limit: ${perMinute} requests a minute per key, kept ${limiter.store === 'memory' ? 'in this process' : `in ${limiter.store}, shared by the replicas`}`);
  // Scheduled retraining: in this process on SQLite, through the PostgreSQL job queue with replicas.
  try {
    retrain = await RetrainSchedule.start(
      {
        cron: config.retrainSchedule,
        args: config.retrainArgs,
        databaseUrl: store.target.url,
        log,
        ...(tuning.retrainCommand && { command: tuning.retrainCommand }),
        onStart: () => metrics.retrainRunning.set(1),
        onRun: (run) => {
          metrics.retrainRunning.set(0);
          metrics.retrainRuns.inc({ outcome: run.outcome });
          metrics.retrainLastRun.set({ outcome: run.outcome }, Date.now() / 1000);
          // This replica serves the new version at once; the others find it at their next poll.
          if (run.outcome === 'promoted') void models.sync().catch((error: unknown) => log('model sync after a retrain failed', error));
          if (run.outcome === 'canary') void experiments.sync().catch((error: unknown) => log('reading experiments after a retrain failed', error));
        },
      },
      store.provider,
    );
  } catch (error) {
    await release();
    throw error;
  }
  if (config.retrainSchedule) log(`retrain: scheduled '${config.retrainSchedule}'${store.provider === 'postgresql' ? ' through the PostgreSQL job queue (one replica runs each tick)' : `, next at ${retrain.next?.toISOString()}`}`);
  // Experiments: read now, after every start or stop made here, and on the model poll (other replicas' changes).
  // A variant's version is loaded beside the active one (among the two kept for inspection) before shoppers ask.
  const experiments = new ExperimentRegistry(store, {
    onStopped: (experiment, reason) => {
      log(`experiment ${experiment.id} ('${experiment.name}') stopped itself: ${reason}`);
      metrics.experimentsGuarded.inc();
    },
  }, (versions) => {
    for (const version of versions) {
      if (version === models.current?.version) continue;
      void models
        .acquireInspectable(version)
        .then((model) => model?.release())
        .catch((error: unknown) => log(`model version ${version} of a running experiment cannot be loaded; its shoppers get the active version`, error));
    }
  });
  try {
    await experiments.sync();
  } catch (error) {
    await release();
    throw error;
  }
  if (experiments.running.length > 0) log(`experiments running: ${experiments.running.map((e) => `${e.id} ('${e.name}') on ${e.routes.join(', ')}`).join('; ')}`);
  // The SQLite threads (the writer stores every event batch, impressions and attributions; the reader
  // looks up attribution's impressions) start in a burst of CPU: before the first request, not during
  // the first second of traffic, and they stay.
  try {
    releaseThreads = await keepSqliteThreads(store, { reader: attributionOn });
  } catch (error) {
    await release();
    throw error;
  }
  // The first requests' one-time costs, paid before the server takes traffic: the write path's prepared
  // statements and zod's compiled validators (the inference counters' label sets are created with the pool).
  prepareIngestion(store);
  compileValidators();
  const lifecycle = { shuttingDown: false };
  const context: ServeContext = { config, store, reader, catalog, models, pool, recommender, warmer, impressions, attributor, retrain, experiments, metrics, bulk, auth: new Authenticator(config.apiKeys), limiter, log, lifecycle, replicaId };
  const app = createApp(context);

  const httpServer = createExpressServer(app);
  try {
    const warmed = await warmUpRequestPath(httpServer, context, config.warmUpRequests);
    if (warmed) log(`request path warmed: ${warmed.requests} requests to itself in ${warmed.ms.toFixed(0)} ms (${Object.entries(warmed.statuses).map(([family, n]) => `${n} ${family}`).join(', ')})`);
  } catch (error) {
    log('request path warm-up failed; serving without it', error);
  }
  // Users whose representations the serving version has stored (its training job's, a previous server's)
  // are filed before the first shopper arrives; the rest are computed in the background as before.
  if (models.current && config.userCacheSize > 0) {
    const started = performance.now();
    const filed = await warmer.filedFromMemo(START_MEMO_WAIT_SECONDS);
    log(`user cache: ${recommender.cachedUsers} users before listening${filed ? '' : ' (still reading)'}, read from stored representations in ${(performance.now() - started).toFixed(0)} ms`);
  }
  const server = await new Promise<Server>((resolve, reject) => {
    const s = httpServer;
    s.once('error', reject);
    s.listen(config.port, config.host, () => resolve(s));
  }).catch(async (error: unknown) => {
    await release();
    throw new AppError('LISTEN_FAILED', `cannot listen on ${config.host}:${config.port}: ${(error as Error).message}`);
  });
  warmer.markListening();
  server.keepAliveTimeout = 65_000; // above common load balancers' idle timeouts, so they close first
  const poll =
    config.modelPollSeconds > 0
      ? setInterval(() => {
          void models.sync().catch((error: unknown) => log('model poll failed', error));
          void experiments
            .sync()
            .then(() => experiments.guard())
            .catch((error: unknown) => log('experiment poll failed', error));
        }, config.modelPollSeconds * 1000)
      : undefined;
  poll?.unref();

  const { port } = server.address() as AddressInfo;
  let closing: Promise<void> | undefined;
  return {
    url: `http://${config.host.includes(':') ? `[${config.host}]` : config.host}:${port}`,
    port,
    context,
    app,
    close() {
      closing ??= (async () => {
        lifecycle.shuttingDown = true;
        bulk.close();
        if (poll) clearInterval(poll);
        await new Promise<void>((resolve) => {
          const force = setTimeout(() => server.closeAllConnections(), config.shutdownTimeoutSeconds * 1000);
          server.close(() => {
            clearTimeout(force);
            resolve();
          });
          server.closeIdleConnections();
        });
        warmer.stop();
        // The cache's representations for the next start (read back before it listens).
        try {
          const started = performance.now();
          const stored = warmer.storeRepresentations(models.current);
          if (typeof stored === 'number') log(`stored the user cache's representations for model version ${models.current!.version} (${stored} distinct histories) in ${(performance.now() - started).toFixed(0)} ms (read back at the next start)`);
          else log(`the user cache's representations were not stored: ${stored}`);
        } catch (error) {
          log("could not store the user cache's representations", error);
        }
        await release();
      })();
      return closing;
    },
  };
}

/** 86400 → '24h', 90 → '90 s': for the start-up log. */
function formatSpan(seconds: number): string {
  if (seconds % 86_400 === 0 && seconds >= 172_800) return `${seconds / 86_400}d`;
  if (seconds % 3_600 === 0) return `${seconds / 3_600}h`;
  if (seconds % 60 === 0) return `${seconds / 60}m`;
  return `${seconds} s`;
}
