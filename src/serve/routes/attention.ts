import type { Router } from 'express';
import type { ExplainedEvent } from '../../inspect/explain.js';
import { sessionEvents } from '../../inspect/session-events.js';
import type { AttentionReport } from '../../inspect/report.js';
import type { ServeContext } from '../context.js';
import { ProblemError } from '../problem.js';
import { AttentionReportSchema } from '../../inspect/report-schema.js';
import { reply } from '../responses.js';
import { AttentionQuery, IdParam, SessionAttentionBody, parse } from '../validation.js';

/**
 * Attention inspection: which past events a prediction attended to, per
 * layer and head, with rollout and leave-one-out attribution. Read keys.
 */
export function attentionRoutes(router: Router, ctx: ServeContext): void {
  router.get('/users/:id/attention', ctx.auth.require('read'), async (req, res) => {
    const { id } = parse(IdParam, req.params, 'path');
    const query = parse(AttentionQuery, req.query, 'query');
    const userId = await ctx.reader.userId(id);
    if (userId === undefined) throw new ProblemError('USER_NOT_FOUND', `user '${id}' has no stored events`);
    const history = await ctx.reader.userHistory(userId);
    const events = Array.from(history.items, (itemId, i) => ({ itemId, type: history.types[i]!, ts: history.timestamps[i]! }));
    reply(res, AttentionReportSchema, { user: id, ...(await inspect(ctx, events, query, await ctx.reader.eventTypes())) });
  });

  router.post('/sessions/attention', ctx.auth.require('read'), async (req, res) => {
    const body = parse(SessionAttentionBody, req.body, 'body');
    const typeIds = await ctx.reader.eventTypes();
    const { events, unknownItems, errors } = sessionEvents(body.events, ctx.catalog, typeIds);
    if (errors.length > 0) {
      const problems = errors.map((e) => ({ in: 'body', pointer: `/events/${e.index}/${e.field}`, message: e.message }));
      throw new ProblemError('VALIDATION_FAILED', `${problems[0]!.pointer}: ${problems[0]!.message}`, { errors: problems });
    }
    const report = await inspect(ctx, events, body, typeIds);
    reply(res, AttentionReportSchema, { ...report, ignored: { ...report.ignored, unknownItems: report.ignored.unknownItems + unknownItems } });
  });
}

async function inspect(
  ctx: ServeContext,
  events: ExplainedEvent[],
  options: { k: number; target?: string | undefined; version?: number | undefined; exclude: 'purchased' | 'seen' | 'none' },
  typeIds: ReadonlyMap<string, number>,
): Promise<AttentionReport> {
  const model = await ctx.models.acquireInspectable(options.version);
  if (!model) throw new ProblemError('MODEL_NOT_LOADED', 'attention inspection needs a trained model; none is loaded');
  try {
    const typeNames = new Map([...typeIds].map(([name, id]) => [id, name]));
    // On a worker: the full forward pass and the leave-one-out passes never run on the event loop.
    return await model.inspect(ctx.catalog, events, typeNames, { k: options.k, target: options.target, exclude: options.exclude });
  } finally {
    model.release();
  }
}
