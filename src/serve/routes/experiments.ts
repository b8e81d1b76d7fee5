import type { Router } from 'express';
import { createExperiment, getExperiment, listExperiments, startExperiment, stopExperiment, type Experiment } from '../../data/experiments.js';
import { variantCounts } from '../../data/online-metrics.js';
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
    reply(res, ExperimentSchema, describe(experiment, await variantResults(ctx, experiment)));
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
    reply(res, ExperimentSchema, describe(experiment, await variantResults(ctx, experiment)));
  });
}

/** Each variant's online metrics since the experiment started (none for a draft), and each against the control. */
async function variantResults(ctx: ServeContext, e: Experiment): Promise<Map<string, { metrics: OnlineMetrics; againstControl?: VariantComparison }>> {
  const counts = await variantCounts(ctx.store, e);
  const control = counts.get(e.variants.find((v) => v.control)!.name);
  return new Map(e.variants.flatMap((v) => {
    const c = counts.get(v.name);
    return c ? [[v.name, { metrics: onlineMetrics(c), ...(!v.control && control && { againstControl: compareToControl(control, c) }) }] as const] : [];
  }));
}

/** The experiment as the API shows it; with results (reading one experiment), each variant's impressions and metrics. */
function describe(e: Experiment, results?: ReadonlyMap<string, { metrics: OnlineMetrics; againstControl?: VariantComparison }>) {
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
    variants: e.variants.map((v) => ({ ...v, ...(results && { impressions: results.get(v.name)?.metrics.impressions ?? 0, ...results.get(v.name) }) })),
  };
}
