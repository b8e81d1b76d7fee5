import type { Router } from 'express';
import { normaliseEventType } from '../../data/import/event-types.js';
import { FieldError, parseTimestamp } from '../../data/import/fields.js';
import type { ExplainedEvent } from '../../inspect/explain.js';
import { inspectHistory } from '../../inspect/inspect-history.js';
import type { AttentionReport } from '../../inspect/report.js';
import type { ServeContext } from '../context.js';
import { ProblemError } from '../problem.js';
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
    res.json({ user: id, ...(await inspect(ctx, events, query)) });
  });

  router.post('/sessions/attention', ctx.auth.require('read'), async (req, res) => {
    const body = parse(SessionAttentionBody, req.body, 'body');
    const types = await ctx.reader.eventTypes();
    const events: ExplainedEvent[] = [];
    const errors: { in: string; pointer: string; message: string }[] = [];
    let unknown = 0;
    body.events.forEach((e, i) => {
      const item = ctx.catalog.byExternalId(e.item);
      const type = normaliseEventType(e.type);
      const ts = e.timestamp === undefined ? null : parseTimestamp(e.timestamp);
      if (type instanceof FieldError) errors.push({ in: 'body', pointer: `/events/${i}/type`, message: type.message });
      if (ts instanceof FieldError) errors.push({ in: 'body', pointer: `/events/${i}/timestamp`, message: ts.message });
      if (!item) unknown++;
      else if (!(type instanceof FieldError) && !(ts instanceof FieldError)) events.push({ itemId: item.id, type: types.get(type) ?? 0, ts });
    });
    if (errors.length > 0) throw new ProblemError('VALIDATION_FAILED', `${errors[0]!.pointer}: ${errors[0]!.message}`, { errors });
    const report = await inspect(ctx, events, body);
    res.json({ ...report, ignored: { ...report.ignored, unknownItems: report.ignored.unknownItems + unknown } });
  });
}

async function inspect(
  ctx: ServeContext,
  events: ExplainedEvent[],
  options: { k: number; target?: string | undefined; version?: number | undefined; exclude: 'purchased' | 'seen' | 'none' },
): Promise<AttentionReport> {
  const model = await ctx.models.acquire(options.version);
  if (!model) throw new ProblemError('MODEL_NOT_LOADED', 'attention inspection needs a trained model; none is loaded');
  try {
    const typeNames = new Map([...(await ctx.reader.eventTypes())].map(([name, id]) => [id, name]));
    return inspectHistory(model, ctx.catalog, typeNames, events, options);
  } finally {
    model.release();
  }
}
