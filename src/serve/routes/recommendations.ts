import type { Router } from 'express';
import type { ServeContext } from '../context.js';
import type { Assignment } from '../experiments.js';
import { filtersOf, withProperties } from '../merchandising.js';
import type { Serving } from '../recommender.js';
import { RankResponseSchema, SessionRecommendationsSchema, UserNextSequenceSchema, UserRecommendationsSchema, reply } from '../responses.js';
import { IdParam, NextSequenceQuery, RankBody, RecommendationQuery, SessionRecommendationBody, parse } from '../validation.js';

/**
 * The read routes shops call on every page view. Each response carries a
 * recommendationId under which the server records what it showed (an
 * impression; src/serve/impression-recorder.ts), off the request path.
 * A shopper on a running experiment's route is served by their variant
 * (src/serve/experiments.ts), and the response and impression name it.
 */
export function recommendationRoutes(router: Router, ctx: ServeContext): void {
  const count = (strategy: string): void => {
    ctx.metrics.recommendations.inc({ strategy });
  };

  router.get('/users/:id/recommendations', ctx.auth.require('read'), async (req, res) => {
    const { id } = parse(IdParam, req.params, 'path');
    const query = parse(RecommendationQuery, req.query, 'query');
    const assignment = ctx.experiments.assign('user_recommendations', { user: id });
    const result = await ctx.recommender.forUser(id, query.k, filtersOf(ctx.catalog, query), serving(assignment));
    count(result.strategy);
    const experiment = servedBy(assignment, result);
    const recommendationId = ctx.impressions.record('user_recommendations', { user: id }, result, experiment);
    reply(res, UserRecommendationsSchema, { recommendationId, ...named(experiment), user: id, ...result, items: withProperties(ctx.catalog, result.items, query.returnProperties) });
  });

  router.post('/sessions/recommendations', ctx.auth.require('read'), async (req, res) => {
    const body = parse(SessionRecommendationBody, req.body, 'body');
    // A session with the shop's id takes part in experiments (assigned by that id) and owns its impression
    // (its later events are attributed by rule); without one it is outside both.
    const assignment = ctx.experiments.assign('session_recommendations', { session: body.sessionId });
    const result = await ctx.recommender.forSession(body.events, body.k, filtersOf(ctx.catalog, body), serving(assignment));
    count(result.strategy);
    const experiment = servedBy(assignment, result);
    const recommendationId = ctx.impressions.record('session_recommendations', body.sessionId !== undefined ? { session: body.sessionId } : {}, result, experiment);
    reply(res, SessionRecommendationsSchema, { recommendationId, ...named(experiment), ...result, items: withProperties(ctx.catalog, result.items, body.returnProperties) });
  });

  router.get('/users/:id/next-sequence', ctx.auth.require('read'), async (req, res) => {
    const { id } = parse(IdParam, req.params, 'path');
    const query = parse(NextSequenceQuery, req.query, 'query');
    const assignment = ctx.experiments.assign('next_sequence', { user: id });
    const result = await ctx.recommender.nextSequence(id, query.k, query.beam, filtersOf(ctx.catalog, query), serving(assignment));
    count(result.strategy);
    const experiment = servedBy(assignment, result);
    const recommendationId = ctx.impressions.record('next_sequence', { user: id }, result, experiment);
    reply(res, UserNextSequenceSchema, { recommendationId, ...named(experiment), user: id, beam: query.beam, ...result, items: withProperties(ctx.catalog, result.items, query.returnProperties) });
  });

  router.post('/rank', ctx.auth.require('read'), async (req, res) => {
    const body = parse(RankBody, req.body, 'body');
    const owner = body.user !== undefined ? { user: body.user } : { session: body.session! };
    const assignment = ctx.experiments.assign('rank', body.user !== undefined ? { user: body.user } : { session: body.sessionId });
    const result = await ctx.recommender.rank(owner, body.candidates, filtersOf(ctx.catalog, body), serving(assignment));
    count(result.strategy);
    const experiment = servedBy(assignment, result);
    const recommendationId = ctx.impressions.record('rank', { ...(body.user !== undefined && { user: body.user }), ...(body.sessionId !== undefined && { session: body.sessionId }) }, result, experiment);
    reply(res, RankResponseSchema, { recommendationId, ...named(experiment), ...result, items: withProperties(ctx.catalog, result.items, body.returnProperties) });
  });
}

function serving(assignment: Assignment | undefined): Serving {
  if (!assignment) return undefined;
  return assignment.strategy === 'popular' ? { strategy: 'popular' } : { strategy: 'model', modelVersion: assignment.modelVersion };
}

/**
 * The experiment variant that answered: the assignment, unless a model
 * variant's version could not serve and the active one answered instead
 * (that response is outside the experiment).
 */
function servedBy(assignment: Assignment | undefined, result: { strategy: string; modelVersion: number | null }): { experimentId: number; variant: string } | undefined {
  if (!assignment) return undefined;
  if (assignment.strategy === 'model' && result.strategy === 'model' && result.modelVersion !== assignment.modelVersion) return undefined;
  return { experimentId: assignment.experimentId, variant: assignment.variant };
}

function named(experiment: { experimentId: number; variant: string } | undefined): { experiment?: { id: number; variant: string } } {
  return experiment ? { experiment: { id: experiment.experimentId, variant: experiment.variant } } : {};
}
