import type { Router } from 'express';
import { JSON_COLUMN_NULL, toJsonValue } from '../../data/json.js';
import { withWriteLock } from '../../data/write-lock.js';
import type { CatalogItem } from '../../data/serving-reader.js';
import type { ServeContext } from '../context.js';
import { filtersOf, withProperties } from '../merchandising.js';
import { ProblemError } from '../problem.js';
import { ItemSchema, ItemsWrittenSchema, SimilarItemsResponseSchema, reply, type ItemDescription } from '../responses.js';
import { IdParam, ItemsBody, SimilarQuery, parse } from '../validation.js';

/** Catalogue upkeep (admin) and reading one item (read). */
export function itemRoutes(router: Router, ctx: ServeContext): void {
  const { prisma } = ctx.store;

  router.put('/items', ctx.auth.require('admin'), async (req, res) => {
    const { items } = parse(ItemsBody, req.body, 'body');
    const byId = new Map(items.map((item) => [item.id, item])); // the last entry for an id wins
    const result = await withWriteLock(ctx.store, async () => {
      const existing = new Set(
        (await prisma.item.findMany({ where: { externalId: { in: [...byId.keys()] } }, select: { externalId: true } })).map((i) => i.externalId),
      );
      // Only the attributes a row gives are written: PUT {id, price} changes the price and nothing else.
      await prisma.$transaction(
        [...byId.values()].map(({ id, properties, ...attributes }) => {
          const present = {
            ...Object.fromEntries(Object.entries(attributes).filter(([, v]) => v !== undefined)),
            ...(properties !== undefined && { properties: properties === null ? JSON_COLUMN_NULL : toJsonValue(properties) }),
          };
          return prisma.item.upsert({ where: { externalId: id }, create: { externalId: id, ...present }, update: present });
        }),
      );
      return { inserted: [...byId.keys()].filter((id) => !existing.has(id)).length, updated: [...byId.keys()].filter((id) => existing.has(id)).length };
    });
    await ctx.catalog.reload();
    reply(res, ItemsWrittenSchema, result);
  });

  router.get('/items/:id', ctx.auth.require('read'), (req, res) => {
    const { id } = parse(IdParam, req.params, 'path');
    reply(res, ItemSchema, describe(ctx, findItem(ctx, id)));
  });

  router.delete('/items/:id', ctx.auth.require('admin'), async (req, res) => {
    const { id } = parse(IdParam, req.params, 'path');
    findItem(ctx, id);
    await withWriteLock(ctx.store, () => prisma.item.update({ where: { externalId: id }, data: { active: false } }));
    await ctx.catalog.reload();
    reply(res, ItemSchema, describe(ctx, findItem(ctx, id)));
  });

  router.get('/items/:id/similar', ctx.auth.require('read'), async (req, res) => {
    const { id } = parse(IdParam, req.params, 'path');
    const query = parse(SimilarQuery, req.query, 'query');
    const { exclude: _exclude, boosts: _boosts, ...filters } = filtersOf(ctx.catalog, { ...query, exclude: 'none' });
    const result = await ctx.recommender.similar(id, query.k, filters);
    const recommendationId = ctx.impressions.record('similar_items', {}, { strategy: 'model', modelVersion: result.modelVersion, items: result.items });
    reply(res, SimilarItemsResponseSchema, { recommendationId, ...result, items: withProperties(ctx.catalog, result.items, query.returnProperties) });
  });
}

function findItem(ctx: ServeContext, id: string): CatalogItem {
  const item = ctx.catalog.byExternalId(id);
  if (!item) throw new ProblemError('ITEM_NOT_FOUND', `item '${id}' is not in the catalogue`);
  return item;
}

function describe(ctx: ServeContext, item: CatalogItem): ItemDescription {
  const model = ctx.models.current;
  return {
    id: item.externalId,
    title: item.title,
    category: item.category,
    price: item.price,
    active: item.active,
    properties: item.properties,
    inModel: model ? model.vocabulary.indexOf(item.id) !== 0 : false,
  };
}
