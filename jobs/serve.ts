#!/usr/bin/env -S npx tsx
import { setFlagsFromString } from 'node:v8';
import { integerFlag, runJob, type FlagSpec, type JobSpec } from '../src/cli/job.js';
import { DEFAULT_DATABASE_URL } from '../src/config/database-url.js';
import { AppError } from '../src/errors.js';
import { BULK_BATCH_EVENTS, BULK_MAX_WAIT_MS, SLOW_SHARE } from '../src/serve/bulk-governor.js';
import { validateCron } from '../src/serve/cron-expression.js';
import { DEV_KEYS, MAX_ATTRIBUTION_WINDOW_SECONDS, SERVE_DEFAULTS, devKeys, parseApiKeys, parseSpanSeconds, validateServeConfig } from '../src/serve/config.js';
import { consoleLogger, startServer } from '../src/serve/server.js';

// V8's memory reducer, which runs a compacting full collection when allocation slows, paused the event
// loop for 170 ms when it collected a previous version's user cache after an activation; a regular
// mark-compact collected the same garbage in a 10-ms pause (docs/serving-performance.md, "Activation").
// Set before the server allocates anything; worker threads share the process's V8 flags.
setFlagsFromString('--no-memory-reducer');
// The old generation may grow to twice what the last full collection left before the next one (V8 picks
// less for a heap of this size, ~60 MB): during an activation and its pre-warm, which files a second user
// cache, the event loop ran 6 mark-compacts in ~20 s with V8's factor (pauses 5-15 ms each), 1-2 with this
// one (--trace-gc; docs/serving-performance.md, "An activation's first second, thread by thread"). It costs
// up to one more live heap of memory.
setFlagsFromString('--heap-growing-percent=100');

const d = SERVE_DEFAULTS;
const spec = {
  name: 'npm start',
  summary: 'serve next-item recommendations over HTTP from the active model version',
  usage: 'npm start -- [options]',
  flags: {
    host: { type: 'string', value: 'address', default: process.env.HOST ?? d.host, description: 'Interface to listen on ($HOST); 0.0.0.0 for every interface' },
    port: { type: 'string', value: 'n', default: process.env.PORT ?? String(d.port), description: 'Port ($PORT); 0 picks a free one' },
    'database-url': { type: 'string', value: 'url', description: `Database (default: $DATABASE_URL, else ${DEFAULT_DATABASE_URL})` },
    'api-keys': { type: 'string', value: 'list', description: 'role:key entries, comma-separated (default: $ATTNREC_API_KEYS); role is read, write or admin; a key written sha256:<hex> is given hashed' },
    'dev-keys': { type: 'boolean', default: false, description: `Also accept the fixed development keys ${Object.values(DEV_KEYS).join(', ')} (local trials only)` },
    'rate-limit': { type: 'string', value: 'n', default: String(d.rateLimitPerMinute), description: 'Requests per minute per API key (0 = no limit); shared by the replicas through --redis-url, else on PostgreSQL, else per process' },
    'redis-url': { type: 'string', value: 'url', description: 'Keep the rate-limit budgets in this Redis, redis://[user:password@]host:port[/db] (default: $ATTNREC_REDIS_URL); every replica using it draws from one budget per key' },
    'body-limit': { type: 'string', value: 'bytes', default: String(d.bodyLimitBytes), description: 'Largest JSON body accepted' },
    'strict-catalog': { type: 'boolean', default: d.strictCatalog, description: 'Reject events on items the catalogue does not have (default: create them)' },
    'event-types': { type: 'string', value: 'policy', default: d.eventTypes, choices: ['register', 'strict'], description: 'Unknown event types: register them, or reject the events' },
    fallback: { type: 'string', value: 'name', default: d.fallback, choices: ['popular', 'none'], description: 'Without a model: serve popular items, or answer 503' },
    'popular-window': { type: 'string', value: 'days', default: String(d.popularWindowDays), description: 'Popular items are counted over this many days before the newest event' },
    'user-cache': { type: 'string', value: 'n', default: String(d.userCacheSize), description: 'User representations kept in memory, warmed (most recently active first) when a model loads (0 = none)' },
    'user-cache-ttl': { type: 'string', value: 'seconds', default: String(d.userCacheTtlSeconds), description: "Recompute a cached user after this long; 0 = only on the user's new events (on PostgreSQL, those stored through any replica; several replicas on one SQLite file need it)" },
    'activation-warm-up': { type: 'string', value: 'seconds', default: String(d.activationWarmUpSeconds), description: 'Before a new version serves, warm the user cache for it for up to this long while the current one keeps serving (0 = swap at once, warm afterwards)' },
    'warm-up-requests': { type: 'string', value: 'n', default: String(d.warmUpRequests), description: "Before it listens, send itself this many requests of the shopper routes over loopback (recommendations and sessions of stored shoppers, events as dry runs: nothing is stored or recorded), so the first shoppers after a start don't wait while the request path compiles (0 = none)" },
    'model-poll': { type: 'string', value: 'seconds', default: String(d.modelPollSeconds), description: 'Look for a newly activated model version this often (0 = never)' },
    workers: { type: 'string', value: 'n', default: String(d.workers), description: 'Inference worker threads: forward passes and scoring run there, never on the event loop (default: the number of cores)' },
    scoring: { type: 'string', value: 'mode', default: d.scoring, choices: ['quantised', 'exact'], description: "Score the catalogue for a shortlist through an 8-bit copy of the output table, rescoring in float32 the rows that can reach it (the same items and scores as exact, probabilities within ~1.5e-4 of theirs relative; a third of exact's time per uncached request one at a time here, bench/shortlist-scoring.ts), or in float32 throughout" },
    'shutdown-timeout': { type: 'string', value: 'seconds', default: String(d.shutdownTimeoutSeconds), description: 'On SIGTERM/SIGINT, time given to in-flight requests' },
    impressions: { type: 'string', value: 'mode', default: d.impressions, choices: ['on', 'off'], description: "Record what each recommendation response showed (its recommendationId, items, ranks, probabilities), in batches off the request path; off records nothing (responses keep their recommendationId)" },
    'impression-retention-days': { type: 'string', value: 'days', default: String(d.impressionRetentionDays), description: 'Delete impressions older than this, hourly, 1,000 rows per statement (0 = keep them)' },
    'impression-batch': { type: 'string', value: 'n', default: String(d.impressionBatch), description: "Impressions per write transaction (also written every second): larger batches cost less CPU an impression and hold SQLite's write lock longer" },
    'attribution-window': {
      type: 'string',
      value: 'span',
      default: '24h',
      description:
        "Attribute an event on an item a recommendation response showed the same user or session to the latest such response at most this long before it (an event that names its recommendationId: to that response, if at most this old); seconds, or e.g. 30m, 24h, 7d; 0 = no attribution. Runs in the background in batches; needs --impressions on",
    },
    'bulk-yield': {
      type: 'string',
      value: 'ms',
      default: String(d.bulkYieldMs),
      description:
        `Live requests come first: while more than ${SLOW_SHARE * 100} % of them (recommendations, small event batches) take longer than this in the server, batches of more than ${BULK_BATCH_EVENTS} events are slowed (each waits at most ${BULK_MAX_WAIT_MS / 1_000} s) to leave live requests the cores; 0 = serve in arrival order`,
    },
    'retrain-schedule': { type: 'string', value: 'cron', description: "Run npm run retrain on this schedule, five cron fields in the server's time zone (e.g. '0 3 * * *'): on PostgreSQL exactly one replica runs each tick; the new version takes over only if it wins. Default: $ATTNREC_RETRAIN_SCHEDULE, else none" },
    'retrain-args': { type: 'string', value: 'flags', default: '', description: "Flags for each scheduled retrain, as one string (e.g. '--since 90d --min-gain 0.01'; see npm run retrain -- --help)" },
  },
  details: `
Routes are documented in OpenAPI 3.1 at /v1/openapi.json. Keys: read keys call recommendation routes,
write keys may also send events, admin keys may also manage items and models. Prefer
$ATTNREC_API_KEYS to --api-keys (command lines are visible to other users of the machine).
The configuration is validated once at start-up; the server exits with code 2 and the reason if it
is wrong, if the database is not migrated (npm run db:migrate), or if the port is taken.`,
} satisfies JobSpec<Record<string, FlagSpec>>;

await runJob(spec, async ({ flags }) => {
  const number = (name: string, raw: string, min: number, max: number): number => {
    const n = Number(raw);
    if (raw.trim() === '' || !Number.isFinite(n) || n < min || n > max) throw new AppError('USAGE', `--${name} must be a number from ${min} to ${max}; got '${raw}'`);
    return n;
  };
  const keysText = flags['api-keys'] ?? process.env.ATTNREC_API_KEYS ?? '';
  const apiKeys = [...parseApiKeys(keysText), ...(flags['dev-keys'] ? devKeys() : [])];
  const databaseUrl = flags['database-url'] ?? process.env.DATABASE_URL;
  const redisUrl = flags['redis-url'] ?? process.env.ATTNREC_REDIS_URL;
  const retrainSchedule = flags['retrain-schedule'] ?? process.env.ATTNREC_RETRAIN_SCHEDULE;
  if (retrainSchedule) validateCron(retrainSchedule);
  const config = validateServeConfig({
    host: flags.host,
    port: integerFlag('port', flags.port, 0, 65_535),
    ...(databaseUrl !== undefined && { databaseUrl }),
    apiKeys,
    rateLimitPerMinute: integerFlag('rate-limit', flags['rate-limit'], 0, 100_000_000),
    ...(redisUrl && { redisUrl }),
    bodyLimitBytes: integerFlag('body-limit', flags['body-limit'], 1_024, 64 * 1024 * 1024),
    strictCatalog: flags['strict-catalog'],
    eventTypes: flags['event-types'],
    fallback: flags.fallback,
    popularWindowDays: number('popular-window', flags['popular-window'], 0.001, 36_500),
    userCacheSize: integerFlag('user-cache', flags['user-cache'], 0, 100_000_000),
    userCacheTtlSeconds: number('user-cache-ttl', flags['user-cache-ttl'], 0, 86_400 * 365),
    activationWarmUpSeconds: number('activation-warm-up', flags['activation-warm-up'], 0, 3_600),
    warmUpRequests: integerFlag('warm-up-requests', flags['warm-up-requests'], 0, 100_000),
    modelPollSeconds: number('model-poll', flags['model-poll'], 0, 86_400),
    workers: integerFlag('workers', flags.workers, 1, 256),
    scoring: flags.scoring,
    shutdownTimeoutSeconds: number('shutdown-timeout', flags['shutdown-timeout'], 0.001, 3_600),
    impressions: flags.impressions,
    impressionRetentionDays: number('impression-retention-days', flags['impression-retention-days'], 0, 36_500),
    impressionBatch: integerFlag('impression-batch', flags['impression-batch'], 1, 10_000),
    attributionWindowSeconds: parseSpanSeconds(flags['attribution-window'], '--attribution-window', MAX_ATTRIBUTION_WINDOW_SECONDS),
    bulkYieldMs: number('bulk-yield', flags['bulk-yield'], 0, 60_000),
    ...(retrainSchedule && { retrainSchedule }),
    retrainArgs: flags['retrain-args'].split(/\s+/).filter(Boolean),
  });
  if (flags['dev-keys']) consoleLogger(`development keys accepted (${Object.values(DEV_KEYS).join(', ')}): never use --dev-keys in production`);
  const server = await startServer(config);
  const model = server.context.models.current;
  consoleLogger(`attnrec listening on ${server.url} (${model ? `model version ${model.version}, ${model.numItems} items` : 'no model'}; ${server.context.catalog.size} catalogue items)`);
  process.stdout.write(`listening on ${server.url}\n`);
  await new Promise<void>((resolve) => {
    const stop = (signal: string): void => {
      consoleLogger(`${signal}: finishing in-flight requests, then exiting`);
      void server.close().then(resolve, (error: unknown) => {
        consoleLogger('shutdown failed', error);
        resolve();
      });
    };
    process.once('SIGTERM', () => stop('SIGTERM'));
    process.once('SIGINT', () => stop('SIGINT'));
  });
});
