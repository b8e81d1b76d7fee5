import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import express, { type Express, type RequestHandler } from 'express';
import { isBulk } from './bulk-governor.js';
import type { ServeContext } from './context.js';
import { openApiDocument } from './openapi.js';
import { LiveSchema, ReadySchema, reply } from './responses.js';
import { ProblemError, problemBody, problemHandler, sendProblem } from './problem.js';
import { attentionRoutes } from './routes/attention.js';
import { eventRoutes } from './routes/events.js';
import { itemRoutes } from './routes/items.js';
import { experimentRoutes } from './routes/experiments.js';
import { modelRoutes } from './routes/models.js';
import { onlineMetricsRoutes } from './routes/online-metrics.js';
import { recommendationRoutes } from './routes/recommendations.js';

/** The Express application: middleware order is security headers → shutdown gate → metrics → body → routes → problems. */
export function createApp(ctx: ServeContext): Express {
  const app = express();
  app.disable('x-powered-by');
  app.set('etag', false);
  app.set('query parser', 'simple');

  app.use(securityHeaders);
  app.use((_req, res, next) => {
    if (ctx.lifecycle.shuttingDown) {
      res.set('Connection', 'close');
      sendProblem(res, problemBody('SHUTTING_DOWN', 'the server is shutting down; retry on another replica'), { 'Retry-After': '1' });
      return;
    }
    next();
  });
  // One timing per request: the metrics histogram, and for the API's live requests (all but bulk event
  // batches) the bulk governor, which holds bulk back while they are slow.
  app.use(
    ctx.metrics.middleware((req, res, seconds) => {
      if (req.originalUrl.startsWith('/v1/') && !isBulk(res.locals)) ctx.bulk.observeLive(seconds * 1_000);
    }),
  );

  app.get('/health/live', (_req, res) => {
    reply(res, LiveSchema, { status: 'live' });
  });
  app.get('/health/ready', async (_req, res) => {
    try {
      await ctx.reader.ping();
    } catch (error) {
      ctx.log('readiness: database unreachable', error);
      sendProblem(res, problemBody('DATABASE_UNAVAILABLE', 'the database does not answer', '/health/ready'));
      return;
    }
    const model = ctx.models.current;
    if (!model && ctx.config.fallback !== 'popular') {
      sendProblem(res, problemBody('MODEL_NOT_LOADED', 'no model version is loaded and the popular fallback is off', '/health/ready'));
      return;
    }
    reply(res, ReadySchema, { status: 'ready', modelVersion: model?.version ?? null, fallback: ctx.config.fallback, items: ctx.catalog.size, userCache: { size: ctx.recommender.cachedUsers, warmUp: ctx.warmer.progress } });
  });
  app.get('/metrics', async (_req, res) => {
    ctx.metrics.modelVersion.set(ctx.models.current?.version ?? 0);
    res.type(ctx.metrics.registry.contentType).send(await ctx.metrics.registry.metrics());
  });
  const spec = JSON.stringify(openApiDocument());
  app.get('/v1/openapi.json', (_req, res) => {
    res.type('application/json').send(spec);
  });

  // The inspection and online-metrics pages: static files, no secrets (their data comes from /v1 with the analyst's key).
  staticPage(app, '/inspect', INSPECT_WEB);
  staticPage(app, '/online', ONLINE_WEB);

  const v1 = express.Router({ strict: true });
  v1.use(ctx.auth.authenticate(ctx.limiter), requireJsonBody, express.json({ limit: ctx.config.bodyLimitBytes, strict: false, type: () => true }));
  eventRoutes(v1, ctx);
  itemRoutes(v1, ctx);
  recommendationRoutes(v1, ctx);
  modelRoutes(v1, ctx);
  experimentRoutes(v1, ctx);
  onlineMetricsRoutes(v1, ctx);
  attentionRoutes(v1, ctx);
  app.use('/v1', v1);

  methodNotAllowed(app, v1);
  app.use((req, _res, next) => {
    next(new ProblemError('NOT_FOUND', `no route ${req.method} ${req.path}; see /v1/openapi.json`));
  });
  app.use(problemHandler(ctx.log));
  return app;
}

/** A static page under `path`, from `folder`, with a content security policy that allows only its own files. */
function staticPage(app: express.Express, path: string, folder: string): void {
  app.use(
    path,
    (_req, res, next) => {
      res.set('Content-Security-Policy', "default-src 'self'; img-src 'self' data:; frame-ancestors 'none'");
      next();
    },
    express.static(folder, { index: 'index.html', redirect: true, fallthrough: true }),
  );
}

export const INSPECT_WEB = join(dirname(fileURLToPath(import.meta.url)), '..', 'inspect', 'web');
export const ONLINE_WEB = join(dirname(fileURLToPath(import.meta.url)), 'web', 'online');

const securityHeaders: RequestHandler = (_req, res, next) => {
  res.set({
    'X-Content-Type-Options': 'nosniff',
    'X-Frame-Options': 'DENY',
    'Referrer-Policy': 'no-referrer',
    'Cross-Origin-Resource-Policy': 'same-origin',
    'Content-Security-Policy': "default-src 'none'; frame-ancestors 'none'",
    'Cache-Control': 'no-store',
  });
  next();
};

/** Bodies are JSON: a POST or PUT with another declared type is refused before it is read. */
const requireJsonBody: RequestHandler = (req, _res, next) => {
  if ((req.method === 'POST' || req.method === 'PUT' || req.method === 'PATCH') && req.headers['content-length'] !== '0') {
    const type = req.headers['content-type'];
    if (type !== undefined && !/^application\/([a-z.+-]*\+)?json\s*(;|$)/i.test(type)) {
      throw new ProblemError('UNSUPPORTED_MEDIA_TYPE', `send the body as application/json, not ${type.split(';')[0]}`);
    }
  }
  next();
};

/** A known path with the wrong method gets 405 and an Allow header rather than 404. */
function methodNotAllowed(app: Express, v1: express.Router): void {
  const allowed = new Map<string, Set<string>>();
  for (const layer of (v1 as unknown as { stack: { route?: { path: string; methods: Record<string, boolean> } }[] }).stack) {
    if (!layer.route) continue;
    const path = `/v1${layer.route.path}`;
    const methods = allowed.get(path) ?? new Set<string>();
    for (const m of Object.keys(layer.route.methods)) methods.add(m.toUpperCase());
    allowed.set(path, methods);
  }
  for (const [path, methods] of allowed) {
    const allow = [...methods].join(', ');
    app.all(path, (req, res) => {
      res.set('Allow', allow);
      throw new ProblemError('METHOD_NOT_ALLOWED', `${req.method} is not allowed on ${path}; use ${allow}`);
    });
  }
}
