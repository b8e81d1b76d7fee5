import type { Router } from 'express';
import type { ServeContext } from '../context.js';
import type { Filters } from '../recommender.js';
import { RankedCandidatesSchema, RecommendationsSchema, UserNextSequenceSchema, UserRecommendationsSchema, reply } from '../responses.js';
import { IdParam, NextSequenceQuery, RankBody, RecommendationQuery, SessionRecommendationBody, parse } from '../validation.js';

/** The read routes shops call on every page view. */
export function recommendationRoutes(router: Router, ctx: ServeContext): void {
  const count = (strategy: string): void => {
    ctx.metrics.recommendations.inc({ strategy });
  };

  router.get('/users/:id/recommendations', ctx.auth.require('read'), async (req, res) => {
    const { id } = parse(IdParam, req.params, 'path');
    const query = parse(RecommendationQuery, req.query, 'query');
    const result = await ctx.recommender.forUser(id, query.k, filters(query));
    count(result.strategy);
    reply(res, UserRecommendationsSchema, { user: id, ...result });
  });

  router.post('/sessions/recommendations', ctx.auth.require('read'), async (req, res) => {
    const body = parse(SessionRecommendationBody, req.body, 'body');
    const result = await ctx.recommender.forSession(body.events, body.k, filters(body));
    count(result.strategy);
    reply(res, RecommendationsSchema, result);
  });

  router.get('/users/:id/next-sequence', ctx.auth.require('read'), async (req, res) => {
    const { id } = parse(IdParam, req.params, 'path');
    const query = parse(NextSequenceQuery, req.query, 'query');
    const result = await ctx.recommender.nextSequence(id, query.k, query.beam, filters(query));
    count(result.strategy);
    reply(res, UserNextSequenceSchema, { user: id, beam: query.beam, ...result });
  });

  router.post('/rank', ctx.auth.require('read'), async (req, res) => {
    const body = parse(RankBody, req.body, 'body');
    const owner = body.user !== undefined ? { user: body.user } : { session: body.session! };
    const result = await ctx.recommender.rank(owner, body.candidates, filters(body));
    count(result.strategy);
    reply(res, RankedCandidatesSchema, result);
  });
}

function filters(query: { exclude: Filters['exclude']; category?: string | undefined; includeItems?: string[] | undefined; excludeItems?: string[] | undefined }): Filters {
  return { exclude: query.exclude, category: query.category, includeItems: query.includeItems, excludeItems: query.excludeItems };
}
