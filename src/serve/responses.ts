import type { Response } from 'express';
import { METADATA_LEVELS } from '../model/metadata-peers.js';
import { z } from 'zod';
import { EXPERIMENT_ROUTES } from '../data/experiments.js';
import { PROBLEM_CODES } from './problem.js';

/**
 * Response bodies, once: the recommender's result types are inferred from
 * these schemas, routes reply through `reply` (which takes the schema and a
 * body of its type), and the OpenAPI document is generated from them. Objects
 * are strict, so a test that parses every route's real response against its
 * schema fails on a field the document does not describe.
 */

const Strategy = z.enum(['model', 'popular']).describe('popular when no model serves or the history has no item the model knows (cold start)');
const ModelVersionNumber = z.number().int().nullable().describe('the version that answered; null for the popular fallback without a model');
const HistoryUse = z
  .strictObject({
    events: z.number().int().describe('events in the history'),
    used: z.number().int().describe('events the model read: items it knows, the last maxLength'),
  })
  .describe('how much of the history the model read');

/** An item's properties as stored (PUT /v1/items, the catalogue import): any JSON object. */
const Properties = z.record(z.string(), z.unknown()).describe("the item's properties (brand, stock, tags, ...) as the shop stored them");

const ItemDescription = {
  item: z.string().describe("the shop's item id"),
  title: z.string().nullable(),
  category: z.string().nullable(),
  price: z.number().nullable(),
  properties: Properties.nullable()
    .optional()
    .describe('present when the request asked for returnProperties: the properties asked for (all with true), null for an item without any'),
};

export const RecommendedItemSchema = z
  .strictObject({
    ...ItemDescription,
    probability: z.number().describe("model: softmax of the scores over the model's whole catalogue; popular: the item's share of the window's events"),
    score: z
      .number()
      .describe("model: the logit, the attention network's plus the version's co-occurrence term when it has one (next-sequence: the step's log-probability); popular: the item's event count in the window"),
    boost: z
      .number()
      .optional()
      .describe('present when the request gave boost rules: the factor they multiplied this item\'s probability by (1 when none held); items are ordered by probability × boost'),
    pin: z
      .strictObject({
        slot: z.number().int().describe('the 1-based position the request pinned the item to'),
        reason: z.string().nullable().describe('the reason the request gave, as given'),
        scored: z.boolean().describe("whether probability and score are the strategy's for this item; false when the model cannot score it (an item the version never saw and no group of known items shares its metadata): both are then 0"),
      })
      .optional()
      .describe('present on items placed by a pin rather than ranked'),
    newItem: z
      .strictObject({ level: z.enum(METADATA_LEVELS).describe('the metadata its peers share with it, the most specific group with enough items') })
      .optional()
      .describe("present on an item the model version never saw (listed after it was trained): it is scored with the mean embedding of the known items that share its metadata, so it can be recommended before the next training"),
    exploration: z
      .literal(true)
      .optional()
      .describe("present on items the request's exploration share put in the last slots (items shown least, new ones first) rather than the ranking; the impression records their ranks, so what they earn can be measured apart"),
  })
  .meta({ id: 'RecommendedItem' });

/** Every recommendation response has one; the recommender's results do not (the routes add it). */
const Identified = {
  recommendationId: z
    .uuidv7()
    .describe('identifies this response (a UUIDv7, so ids sort by time); the server records under it which items the response showed, with their ranks and probabilities'),
  experiment: z
    .strictObject({ id: z.number().int(), variant: z.string() })
    .optional()
    .describe("present when a running experiment assigned this shopper: the experiment and the variant that answered (GET /v1/experiments/{id} compares the variants)"),
};

export const RecommendationsSchema = z.strictObject({
  strategy: Strategy,
  modelVersion: ModelVersionNumber,
  items: z.array(RecommendedItemSchema),
  history: HistoryUse,
  unplacedPins: z
    .array(z.strictObject({ item: z.string(), slot: z.number().int(), why: z.enum(['unknown', 'inactive']).describe('the catalogue does not have the item, or it is inactive') }))
    .optional()
    .describe('present when a pinned item could not be shown; the slot went to the ranking'),
});
export const SessionRecommendationsSchema = RecommendationsSchema.extend(Identified);
export const UserRecommendationsSchema = RecommendationsSchema.extend({ ...Identified, user: z.string() });

export const NextSequenceSchema = z.strictObject({
  strategy: Strategy,
  modelVersion: ModelVersionNumber,
  items: z.array(RecommendedItemSchema),
  probability: z.number().nullable().describe("the whole continuation's probability (the product of each step's); null for the popular fallback"),
  alternatives: z.array(z.strictObject({ items: z.array(z.string()), probability: z.number() })).describe('other continuations the beam kept, most probable first'),
  history: HistoryUse,
});
export const UserNextSequenceSchema = NextSequenceSchema.extend({ ...Identified, user: z.string(), beam: z.number().int() });

export const RankedCandidatesSchema = z.strictObject({
  strategy: Strategy,
  modelVersion: ModelVersionNumber,
  items: z.array(RecommendedItemSchema).describe('the candidates, most probable first'),
  dropped: z.array(z.strictObject({ item: z.string(), reason: z.enum(['unknown', 'inactive', 'not_in_model', 'filtered']) })).describe('candidates left out, and why: unknown to the catalogue, inactive, left out by the filters, or not_in_model (the version never saw it and no group of known items shares its metadata)'),
  history: HistoryUse,
});
export const RankResponseSchema = RankedCandidatesSchema.extend(Identified);

export const SimilarItemsSchema = z.strictObject({
  modelVersion: z.number().int(),
  item: z.string(),
  items: z.array(z.strictObject({ ...ItemDescription, similarity: z.number().describe("cosine of the model's item embeddings") })),
});
export const SimilarItemsResponseSchema = SimilarItemsSchema.extend(Identified);

export const ItemSchema = z
  .strictObject({
    id: z.string(),
    title: z.string().nullable(),
    category: z.string().nullable(),
    price: z.number().nullable(),
    active: z.boolean().describe('inactive items are never recommended'),
    properties: Properties.nullable(),
    inModel: z.boolean().describe('whether the serving version knows the item'),
  })
  .meta({ id: 'Item' });

export const EventsStoredSchema = z.strictObject({
  received: z.number().int(),
  stored: z.number().int(),
  duplicates: z.number().int().describe('events already stored (a replayed eventId, or the same owner, item, type and timestamp)'),
  dryRun: z.literal(true).optional().describe('present on a dry run: stored and duplicates say what storing the batch would do; nothing was stored'),
});

export const ItemsWrittenSchema = z.strictObject({ inserted: z.number().int(), updated: z.number().int() });

/** A version's status, as the migrations CHECK it. */
export const VersionStatusSchema = z.enum(['training', 'ready', 'failed']);

export const ModelVersionSchema = z
  .strictObject({
    version: z.number().int(),
    status: VersionStatusSchema,
    active: z.boolean(),
    loaded: z.boolean().describe('this server serves it now'),
    createdAt: z.iso.datetime(),
    dataHash: z.string(),
    backend: z.string().nullable().describe('the TensorFlow.js backend it was trained on'),
    test: z.record(z.string(), z.unknown()).nullable().describe('test metrics recorded by the training job'),
  })
  .meta({ id: 'ModelVersion' });

export const ModelVersionsSchema = z.strictObject({ serving: z.number().int().nullable(), versions: z.array(ModelVersionSchema).describe('newest first') });

export const ActivationSchema = z.strictObject({ serving: z.number().int(), numItems: z.number().int() });

const IntervalSchema = z.strictObject({ value: z.number(), low: z.number(), high: z.number() }).describe('the estimate and its 95 % interval');
const OnlineMetricsFields = {
  impressions: z.number().int(),
  clickThrough: IntervalSchema.describe('share of impressions followed by an attributed view of an item they showed (Wilson interval)'),
  cartRate: IntervalSchema.describe('share followed by an attributed add-to-cart (Wilson interval)'),
  conversion: IntervalSchema.describe('share followed by an attributed purchase (Wilson interval)'),
  revenuePerThousand: IntervalSchema.describe('attributed purchase revenue (value × quantity) per 1,000 impressions (normal interval)'),
};
export const OnlineMetricsSchema = z
  .strictObject({
    from: z.string(),
    to: z.string(),
    groupBy: z.enum(['version', 'variant', 'route']),
    bucket: z.enum(['none', 'hour', 'day']),
    groups: z.array(z.strictObject({ group: z.string().describe("'v<n>' or 'popular'; '<experiment>/<variant>' or 'none'; or the route"), ...OnlineMetricsFields })),
    series: z
      .array(z.strictObject({ bucket: z.string().describe('start of the bucket'), group: z.string(), ...OnlineMetricsFields }))
      .describe('per bucket and group (empty without a bucket)'),
  })
  .meta({ id: 'OnlineMetrics' });

const ComparisonSchema = z.strictObject({
  test: z.string().describe('the test used'),
  difference: IntervalSchema.describe('variant − control'),
  lift: IntervalSchema.nullable().describe('variant / control − 1 (null when control has no success)'),
  pValue: z.number().describe('two-sided'),
  pWorse: z.number().describe('one-sided: small when the variant is worse (the guard rail reads it)'),
});

export const ExperimentSchema = z
  .strictObject({
    id: z.number().int(),
    name: z.string(),
    status: z.enum(['draft', 'running', 'stopped']),
    routes: z.array(z.enum(EXPERIMENT_ROUTES)).describe('the recommendation routes it takes over'),
    salt: z.string().describe("the assignment hash's salt: a shopper's variant is a function of it and their id, the same on every replica"),
    guardrail: z.strictObject({ alpha: z.number(), minImpressions: z.number().int() }).nullable(),
    createdAt: z.string(),
    startedAt: z.string().nullable(),
    stoppedAt: z.string().nullable(),
    stopReason: z.string().nullable(),
    variants: z.array(
      z.strictObject({
        name: z.string(),
        strategy: z.enum(['model', 'popular']),
        modelVersion: z.number().int().nullable(),
        share: z.number(),
        control: z.boolean(),
        impressions: z.number().int().optional().describe('responses this variant answered so far (one experiment read)'),
        metrics: z.strictObject(OnlineMetricsFields).optional().describe('its online metrics since the start (one experiment read)'),
        againstControl: z
          .strictObject({ clickThrough: ComparisonSchema, cartRate: ComparisonSchema, conversion: ComparisonSchema, revenuePerImpression: ComparisonSchema })
          .optional()
          .describe('the variant against the control (absent for the control)'),
      }),
    ),
  })
  .meta({ id: 'Experiment' });
export const ExperimentListSchema = z.strictObject({ experiments: z.array(ExperimentSchema) });

export const RetrainRequestedSchema = z.strictObject({
  status: z
    .enum(['queued', 'running'])
    .describe('queued: a retrain will start (on PostgreSQL, on whichever replica takes it); running: one is already under way on this server, and no second one was queued'),
});

export const LiveSchema = z.strictObject({ status: z.literal('live') });

export const ReadySchema = z.strictObject({
  status: z.literal('ready'),
  modelVersion: z.number().int().nullable(),
  fallback: z.enum(['popular', 'none']),
  items: z.number().int().describe('catalogue items'),
  userCache: z.strictObject({
    size: z.number().int(),
    warmUp: z.strictObject({ version: z.number().int().nullable(), done: z.number().int(), total: z.number().int(), finished: z.boolean() }),
  }),
});

export const ProblemSchema = z
  .looseObject({
    type: z.string(),
    title: z.string(),
    status: z.number().int(),
    detail: z.string(),
    code: z.enum(Object.keys(PROBLEM_CODES) as [string, ...string[]]),
    instance: z.string().optional(),
    errors: z
      .array(z.strictObject({ in: z.string(), pointer: z.string().describe('JSON Pointer (RFC 6901) into the part named by `in`'), message: z.string(), code: z.string().optional() }))
      .optional()
      .describe('VALIDATION_FAILED: every problem found, at most 100'),
    retryAfterSeconds: z.number().int().optional().describe('RATE_LIMITED: as the Retry-After header'),
    limit: z.number().int().optional().describe('BODY_TOO_LARGE: the largest body accepted, bytes'),
    modelVersion: z.number().int().optional().describe('ITEM_NOT_IN_MODEL: the version that lacks the item'),
  })
  .describe('RFC 9457 problem details; `code` is stable; other members may be added')
  .meta({ id: 'Problem' });

export type RecommendedItem = z.output<typeof RecommendedItemSchema>;
export type Recommendations = z.output<typeof RecommendationsSchema>;
export type NextSequence = z.output<typeof NextSequenceSchema>;
export type RankedCandidates = z.output<typeof RankedCandidatesSchema>;
export type SimilarItems = z.output<typeof SimilarItemsSchema>;
export type ModelVersionSummary = z.output<typeof ModelVersionSchema>;
export type ItemDescription = z.output<typeof ItemSchema>;

/**
 * With ATTNREC_CHECK_RESPONSES=1 (the test suite sets it) every reply is parsed against its schema and a
 * mismatch fails the request (500, logged with the schema's complaint): the suite's requests then check
 * that the OpenAPI document describes what the server sends. Off in production, where it would cost a
 * parse per response.
 */
const CHECK_RESPONSES = process.env.ATTNREC_CHECK_RESPONSES === '1';

/** Sends `body` as JSON; its type is the schema's, so a route cannot drift from what the document says. */
export function reply<S extends z.ZodType>(res: Response, schema: S, body: z.input<S>): void {
  if (CHECK_RESPONSES) {
    const checked = schema.safeParse(body);
    if (!checked.success) throw new Error(`response to ${res.req.method} ${res.req.originalUrl} does not match its schema: ${z.prettifyError(checked.error)}`);
  }
  res.json(body);
}
