import type { Router } from 'express';
import { createExperiment, getExperiment, listExperiments, startExperiment, stopExperiment, variantImpressions, type Experiment } from '../../data/experiments.js';
import { onlineCounts } from '../../data/online-metrics.js';
import type { ServeContext } from '../context.js';
import { compareToControl, onlineMetrics, type OnlineMetrics, type VariantComparison } from '../online-report.js';
import { ExperimentListSchema, ExperimentSchema, reply } from '../responses.js';
import { ExperimentListQuery, ExperimentParam, ExperimentStopBody, parse, parseExperiment } from '../validation.js';

/**
 * Online experiments: admins define, start and stop them; anyone with a read
 * key lists them and reads a variant's traffic. Every start or stop made here
 * is served by this server at once and by the other replicas at their next
 * model poll.
 */
export function experimentRoutes(router: Router, ctx: ServeContext): void {
  router.post('/experiments', ctx.auth.require('admin'), async (req, res) => {
    const definition = parseExperiment(req.body);
    const experiment = await createExperiment(ctx.store, { ...definition, variants: definition.variants.map((v) => ({ ...v, modelVersion: v.modelVersion ?? null })) });
    res.status(201);
    reply(res, ExperimentSchema, describe(experiment));
  });

  router.get('/experiments', ctx.auth.require('read'), async (req, res) => {
    const { status } = parse(ExperimentListQuery, req.query, 'query');
    reply(res, ExperimentListSchema, { experiments: (await listExperiments(ctx.store, status)).map((e) => describe(e)) });
  });

  router.get('/experiments/:id', ctx.auth.require('read'), async (req, res) => {
    const { id } = parse(ExperimentParam, req.params, 'path');
    const experiment = await getExperiment(ctx.store, id);
    reply(res, ExperimentSchema, describe(experiment, await variantImpressions(ctx.store, id), await variantResults(ctx, experiment)));
  });

  router.post('/experiments/:id/start', ctx.auth.require('admin'), async (req, res) => {
    const { id } = parse(ExperimentParam, req.params, 'path');
    const experiment = await startExperiment(ctx.store, id);
    await ctx.experiments.sync();
    ctx.log(`experiment ${id} ('${experiment.name}') started on ${experiment.routes.join(', ')}: ${experiment.variants.map((v) => `${v.name} ${v.share}`).join(', ')}`);
    reply(res, ExperimentSchema, describe(experiment));
  });

  router.post('/experiments/:id/stop', ctx.auth.require('admin'), async (req, res) => {
    const { id } = parse(ExperimentParam, req.params, 'path');
    const { reason } = parse(ExperimentStopBody, req.body ?? {}, 'body');
    const experiment = await stopExperiment(ctx.store, id, reason);
    await ctx.experiments.sync();
    ctx.log(`experiment ${id} ('${experiment.name}') stopped: ${reason}`);
    reply(res, ExperimentSchema, describe(experiment, await variantImpressions(ctx.store, id)));
  });
}

/** Each variant's online metrics since the experiment started, and each against the control. */
async function variantResults(ctx: ServeContext, e: Experiment): Promise<Map<string, { metrics: OnlineMetrics; againstControl?: VariantComparison }>> {
  const out = new Map<string, { metrics: OnlineMetrics; againstControl?: VariantComparison }>();
  if (!e.startedAt) return out;
  const to = e.stoppedAt?.getTime() ?? Date.now() + 1;
  const rows = await onlineCounts(ctx.store, { from: e.startedAt.getTime(), to, groupBy: 'variant', experimentId: e.id });
  const counts = new Map(rows.map((r) => [r.group.slice(r.group.indexOf('/') + 1), r]));
  const empty = { impressions: 0, viewed: 0, carted: 0, purchased: 0, revenue: 0, revenueSquares: 0 };
  const control = e.variants.find((v) => v.control)!;
  const controlCounts = counts.get(control.name) ?? empty;
  for (const v of e.variants) {
    const c = counts.get(v.name) ?? empty;
    out.set(v.name, { metrics: onlineMetrics(c), ...(!v.control && { againstControl: compareToControl(controlCounts, c) }) });
  }
  return out;
}

function describe(e: Experiment, impressions?: ReadonlyMap<string, number>, results?: ReadonlyMap<string, { metrics: OnlineMetrics; againstControl?: VariantComparison }>) {
  return {
    id: e.id,
    name: e.name,
    status: e.status,
    routes: [...e.routes],
    salt: e.salt,
    guardrail: e.guardrail,
    createdAt: e.createdAt.toISOString(),
    startedAt: e.startedAt?.toISOString() ?? null,
    stoppedAt: e.stoppedAt?.toISOString() ?? null,
    stopReason: e.stopReason,
    variants: e.variants.map((v) => ({ ...v, ...(impressions && { impressions: impressions.get(v.name) ?? 0 }), ...results?.get(v.name) })),
  };
}
