import type { Router } from 'express';
import type { ServeContext } from '../context.js';
import type { Filters } from '../recommender.js';
import { RankResponseSchema, SessionRecommendationsSchema, UserNextSequenceSchema, UserRecommendationsSchema, reply } from '../responses.js';
import { IdParam, NextSequenceQuery, RankBody, RecommendationQuery, SessionRecommendationBody, parse } from '../validation.js';

/**
 * The read routes shops call on every page view. Each response carries a
 * recommendationId under which the server records what it showed (an
 * impression; src/serve/impression-recorder.ts), off the request path.
 */
export function recommendationRoutes(router: Router, ctx: ServeContext): void {
  const count = (strategy: string): void => {
    ctx.metrics.recommendations.inc({ strategy });
  };

  router.get('/users/:id/recommendations', ctx.auth.require('read'), async (req, res) => {
    const { id } = parse(IdParam, req.params, 'path');
    const query = parse(RecommendationQuery, req.query, 'query');
    const result = await ctx.recommender.forUser(id, query.k, filters(query));
    count(result.strategy);
    const recommendationId = ctx.impressions.record('user_recommendations', { user: id }, result);
    reply(res, UserRecommendationsSchema, { recommendationId, user: id, ...result });
  });

  router.post('/sessions/recommendations', ctx.auth.require('read'), async (req, res) => {
    const body = parse(SessionRecommendationBody, req.body, 'body');
    const result = await ctx.recommender.forSession(body.events, body.k, filters(body));
    count(result.strategy);
    // An inline session carries no session id: its impression has no owner, only its recommendationId.
    const recommendationId = ctx.impressions.record('session_recommendations', {}, result);
    reply(res, SessionRecommendationsSchema, { recommendationId, ...result });
  });

  router.get('/users/:id/next-sequence', ctx.auth.require('read'), async (req, res) => {
    const { id } = parse(IdParam, req.params, 'path');
    const query = parse(NextSequenceQuery, req.query, 'query');
    const result = await ctx.recommender.nextSequence(id, query.k, query.beam, filters(query));
    count(result.strategy);
    const recommendationId = ctx.impressions.record('next_sequence', { user: id }, result);
    reply(res, UserNextSequenceSchema, { recommendationId, user: id, beam: query.beam, ...result });
  });

  router.post('/rank', ctx.auth.require('read'), async (req, res) => {
    const body = parse(RankBody, req.body, 'body');
    const owner = body.user !== undefined ? { user: body.user } : { session: body.session! };
    const result = await ctx.recommender.rank(owner, body.candidates, filters(body));
    count(result.strategy);
    const recommendationId = ctx.impressions.record('rank', body.user !== undefined ? { user: body.user } : {}, result);
    reply(res, RankResponseSchema, { recommendationId, ...result });
  });
}

function filters(query: { exclude: Filters['exclude']; category?: string | undefined; includeItems?: string[] | undefined; excludeItems?: string[] | undefined }): Filters {
  return { exclude: query.exclude, category: query.category, includeItems: query.includeItems, excludeItems: query.excludeItems };
}
