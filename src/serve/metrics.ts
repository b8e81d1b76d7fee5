import type { Request, RequestHandler, Response } from 'express';
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

/** Prometheus metrics of one server (its own registry: two servers in one process, as in tests, do not mix). */
export class ServeMetrics {
  readonly registry = new Registry();
  readonly requestSeconds = new Histogram({
    name: 'attnrec_http_request_duration_seconds',
    help: 'HTTP request latency by route (the route pattern, not the URL) and status',
    labelNames: ['method', 'route', 'status'] as const,
    buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
    registers: [this.registry],
  });
  readonly modelVersion = new Gauge({ name: 'attnrec_model_version', help: 'Model version serving (0 = none)', registers: [this.registry] });
  readonly eventsIngested = new Counter({
    name: 'attnrec_events_ingested_total',
    help: 'Events received by POST /v1/events, by outcome (stored, duplicate)',
    labelNames: ['outcome'] as const,
    registers: [this.registry],
  });
  readonly recommendations = new Counter({
    name: 'attnrec_recommendations_total',
    help: 'Recommendation responses by strategy (model, popular)',
    labelNames: ['strategy'] as const,
    registers: [this.registry],
  });

  readonly userCache = new Counter({
    name: 'attnrec_user_cache_total',
    help: 'User representation lookups: hit (cached) or miss (history read and network run)',
    labelNames: ['result'] as const,
    registers: [this.registry],
  });

  readonly bulkWaitSeconds = new Histogram({
    name: 'attnrec_bulk_batch_wait_seconds',
    help: 'How long each batch of background work waited for live requests to leave room: ingestion (an API batch of more than 10 events, before it is stored), attribution (a batch of stored events)',
    labelNames: ['work'] as const,
    buckets: [0.001, 0.01, 0.05, 0.1, 0.25, 0.5, 1, 2],
    registers: [this.registry],
  });
  private bulkSource: { readonly limitPerS: number; readonly waitingBatches: number } | undefined;
  readonly bulkLimit = this.scrapedGauge(
    'attnrec_bulk_limit_events_per_second',
    'The rate (events/s) bulk event batches and attribution are held to while live requests are slow (+Inf: not limited)',
    () => this.bulkSource?.limitPerS ?? Infinity,
  );
  readonly bulkWaiting = this.scrapedGauge('attnrec_bulk_batches_waiting', 'Bulk event batches waiting for live requests to leave room', () => this.bulkSource?.waitingBatches ?? 0);

  /** The bulk gauges report `source` from now on. */
  watchBulk(source: { readonly limitPerS: number; readonly waitingBatches: number }): void {
    this.bulkSource = source;
  }

  private walSource: { readonly heldRounds: number; readonly heldSeconds: number } | undefined;
  readonly walHeldRounds = this.scrapedCounter(
    'attnrec_wal_held_rounds_total',
    "SQLite: the WAL checkpoint's held rounds (each holds every write of the server back until the WAL can start over)",
    () => this.walSource?.heldRounds ?? 0,
  );
  readonly walHeldSeconds = this.scrapedCounter('attnrec_wal_held_seconds_total', "SQLite: seconds writes were held back by the WAL checkpoint's held rounds", () => this.walSource?.heldSeconds ?? 0);
  /** What the WAL counters read when scraped (SQLite's checkpointer; none on PostgreSQL or in memory). */
  watchWal(source: { readonly heldRounds: number; readonly heldSeconds: number }): void {
    this.walSource = source;
  }

  /** What the user-cache gauges read when scraped (see watchUserCache). */
  private userCacheSource: { readonly cachedUsers: number; readonly userCacheBytes: number } | undefined;
  readonly cachedUsers = this.scrapedGauge('attnrec_user_cache_users', 'Users whose representation is cached for the version serving', () => this.userCacheSource?.cachedUsers ?? 0);
  readonly userCacheBytes = this.scrapedGauge(
    'attnrec_user_cache_bytes',
    "Bytes of the user caches' tables: the version serving's and, during an activation, the next version's",
    () => this.userCacheSource?.userCacheBytes ?? 0,
  );

  /** The user-cache gauges report `source` from now on. */
  watchUserCache(source: { readonly cachedUsers: number; readonly userCacheBytes: number }): void {
    this.userCacheSource = source;
  }

  readonly inferenceHistories = new Counter({
    name: 'attnrec_inference_histories_total',
    help: 'Histories run through the network by the inference workers, by worker (live: 0.., background: the warm-up worker)',
    labelNames: ['worker'] as const,
    registers: [this.registry],
  });

  readonly inferenceBatches = new Counter({
    name: 'attnrec_inference_batches_total',
    help: 'Batches of histories sent to the live inference workers, by worker (histories_total / batches_total is the mean batch)',
    labelNames: ['worker'] as const,
    registers: [this.registry],
  });

  readonly modelLoads = new Counter({
    name: 'attnrec_model_loads_total',
    help: "Model versions loaded by the live inference workers, by worker and source: files (the artifact read and the tables built), shared (copied from the worker that built them, ~25 ms instead of ~115 for the default model)",
    labelNames: ['worker', 'from'] as const,
    registers: [this.registry],
  });

  readonly replicaNotices = new Counter({
    name: 'attnrec_replica_event_notices_total',
    help: "PostgreSQL: notices of other replicas' stored events received (each drops those users' cached state here)",
    registers: [this.registry],
  });

  readonly experimentsGuarded = new Counter({
    name: 'attnrec_experiments_stopped_by_guardrail_total',
    help: "Experiments this server stopped because a variant's purchase conversion was worse than control's at the guard rail's significance",
    registers: [this.registry],
  });
  readonly retrainRuns = new Counter({
    name: 'attnrec_retrain_runs_total',
    help: 'Scheduled or requested retrains this server ran, by outcome: promoted (the new version won and serves), canary (it won and serves a share of shoppers in an experiment), kept (it did not win; the active version serves), failed (nothing changed)',
    labelNames: ['outcome'] as const,
    registers: [this.registry],
  });
  readonly retrainLastRun = new Gauge({
    name: 'attnrec_retrain_last_run_timestamp_seconds',
    help: 'When the last retrain this server ran ended, by outcome (Unix seconds)',
    labelNames: ['outcome'] as const,
    registers: [this.registry],
  });
  readonly retrainRunning = new Gauge({ name: 'attnrec_retrain_running', help: '1 while this server runs a retrain', registers: [this.registry] });

  readonly impressionsStored = new Counter({
    name: 'attnrec_impressions_stored_total',
    help: 'Impressions (what a recommendation response showed, under its recommendationId) stored',
    registers: [this.registry],
  });
  readonly impressionsDropped = new Counter({
    name: 'attnrec_impressions_dropped_total',
    help: 'Impressions not stored, by reason: overflow (the buffer was full), store_failed (their batch could not be written), closed (recorded after shutdown began)',
    labelNames: ['reason'] as const,
    registers: [this.registry],
  });
  readonly impressionStoreFailures = new Counter({
    name: 'attnrec_impression_store_failures_total',
    help: 'Failed impression storage operations: write (a batch, its impressions dropped; the responses were answered) or prune (a retention pass)',
    labelNames: ['operation'] as const,
    registers: [this.registry],
  });
  readonly impressionBatches = new Counter({
    name: 'attnrec_impression_batches_total',
    help: 'Impression batches written, one transaction each (stored_total / batches_total is the mean batch)',
    registers: [this.registry],
  });
  readonly impressionsPruned = new Counter({
    name: 'attnrec_impressions_pruned_total',
    help: 'Impressions deleted by retention (--impression-retention-days)',
    registers: [this.registry],
  });
  /** What the impression buffer gauge reads when scraped (see watchImpressions). */
  private impressionSource: { readonly buffered: number } | undefined;
  readonly impressionsBuffered: Gauge = new Gauge({
    name: 'attnrec_impressions_buffered',
    help: 'Impressions waiting in memory for their batch to be written',
    registers: [this.registry],
    collect: (): void => this.impressionsBuffered.set(this.impressionSource?.buffered ?? 0),
  });

  /** The impression buffer gauge reports `source` from now on. */
  watchImpressions(source: { readonly buffered: number }): void {
    this.impressionSource = source;
  }

  readonly attributions = new Counter({
    name: 'attnrec_attributions_total',
    help: 'Events attributed to the recommendation response that showed their item, by kind: explicit (the event named its recommendationId) or rule (the latest impression that showed the item to the same user or session within --attribution-window)',
    labelNames: ['kind'] as const,
    registers: [this.registry],
  });
  readonly unattributed = new Counter({
    name: 'attnrec_events_unattributed_total',
    help: 'Events the attributor read and left unattributed, by reason: no_impression, unknown_recommendation (the named recommendationId was never recorded or was pruned), item_not_shown (that response did not show the item), expired (the event came later than --attribution-window after it)',
    labelNames: ['reason'] as const,
    registers: [this.registry],
  });
  readonly attributionFailures = new Counter({
    name: 'attnrec_attribution_failures_total',
    help: "Attribution batches the store refused (the events stay stored; the batch is retried at the attributor's next round)",
    registers: [this.registry],
  });
  readonly attributionBacklog = new Gauge({
    name: 'attnrec_attribution_backlog_events',
    help: "Events stored but not yet read by the attributor, at this server's last attribution round (newest event id minus the cursor)",
    registers: [this.registry],
  });

  // Online metrics as counters (GET /v1/metrics/online has the per-impression rates with their intervals).
  // Labels name groups as that endpoint does: model_version 'v<n>' or 'popular', variant '<experiment>/<variant>' or 'none'.
  readonly onlineImpressions = new Counter({
    name: 'attnrec_online_impressions_total',
    help: 'Impressions this server stored, by route, model version and experiment variant',
    labelNames: ['route', 'model_version', 'variant'] as const,
    registers: [this.registry],
  });
  readonly onlineEvents = new Counter({
    name: 'attnrec_online_attributed_events_total',
    help: 'Events this server attributed to an impression, by type (view, cart, purchase, other) and the impression\'s route, model version and variant; divided by attnrec_online_impressions_total it is events per impression (the once-per-impression rates are in GET /v1/metrics/online)',
    labelNames: ['type', 'route', 'model_version', 'variant'] as const,
    registers: [this.registry],
  });
  readonly onlineRevenue = new Counter({
    name: 'attnrec_online_attributed_revenue_total',
    help: 'Revenue (value × quantity, quantity 1 when absent; positive amounts only) of the purchases this server attributed, by the impression\'s route, model version and variant',
    labelNames: ['route', 'model_version', 'variant'] as const,
    registers: [this.registry],
  });

  /** The online counters' group labels of an impression or attribution. */
  static onlineGroup(row: { readonly route: string; readonly modelVersion: number | null; readonly experimentId: number | null; readonly variant: string | null }): { route: string; model_version: string; variant: string } {
    return {
      route: row.route,
      model_version: row.modelVersion === null ? 'popular' : `v${row.modelVersion}`,
      variant: row.experimentId === null || row.variant === null ? 'none' : `${row.experimentId}/${row.variant}`,
    };
  }

  constructor() {
    collectDefaultMetrics({ register: this.registry });
  }

  /**
   * Forgets what the request counters saw: the server's own start-up warm-up requests, before it
   * listens, so the counters describe shoppers' requests only (the inference counters keep the work done).
   */
  forgetRequests(): void {
    this.requestSeconds.reset();
    this.recommendations.reset();
    this.userCache.reset();
  }

  /** A counter whose total is read when it is scraped (kept by its source). */
  private scrapedCounter(name: string, help: string, read: () => number): Counter {
    const counter: Counter = new Counter({
      name,
      help,
      registers: [this.registry],
      collect: (): void => {
        counter.reset();
        counter.inc(read());
      },
    });
    return counter;
  }

  /** A gauge that reads its value when it is scraped. */
  private scrapedGauge(name: string, help: string, read: () => number): Gauge {
    const gauge: Gauge = new Gauge({ name, help, registers: [this.registry], collect: (): void => gauge.set(read()) });
    return gauge;
  }

  /** Times every request into attnrec_http_request_duration_seconds, and hands each time to `onFinish` too. */
  middleware(onFinish?: (req: Request, res: Response, seconds: number) => void): RequestHandler {
    return (req, res, next) => {
      const started = process.hrtime.bigint();
      res.on('finish', () => {
        const route = req.route ? `${req.baseUrl}${String(req.route.path)}` : 'unmatched';
        const seconds = Number(process.hrtime.bigint() - started) / 1e9;
        this.requestSeconds.observe({ method: req.method, route, status: String(res.statusCode) }, seconds);
        onFinish?.(req, res, seconds);
      });
      next();
    };
  }
}
