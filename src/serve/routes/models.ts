import type { Router } from 'express';
import type { ServeContext } from '../context.js';
import { ActivationSchema, ModelVersionsSchema, RetrainRequestedSchema, reply } from '../responses.js';
import { VersionParam, parse } from '../validation.js';

/** Listing versions (read) and activating one (admin): roll forward or back without a restart. */
export function modelRoutes(router: Router, ctx: ServeContext): void {
  router.get('/models', ctx.auth.require('read'), async (_req, res) => {
    reply(res, ModelVersionsSchema, { serving: ctx.models.current?.version ?? null, versions: await ctx.models.list() });
  });

  router.post('/models/:version/activate', ctx.auth.require('admin'), async (req, res) => {
    const { version } = parse(VersionParam, req.params, 'path');
    const model = await ctx.models.activate(version);
    reply(res, ActivationSchema, { serving: model.version, numItems: model.numItems });
  });

  // A retrain outside the schedule: the job decides whether its version takes over (jobs/retrain.ts).
  router.post('/models/retrain', ctx.auth.require('admin'), async (_req, res) => {
    res.status(202);
    reply(res, RetrainRequestedSchema, { status: await ctx.retrain.runNow() });
  });
}
