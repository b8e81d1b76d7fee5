import { z } from 'zod';
import { EXPERIMENT_ROUTES } from '../data/experiments.js';
import { MAX_EXTERNAL_ID_LENGTH } from '../data/import/fields.js';
import { propertiesProblem, type ItemProperties } from '../data/item-properties.js';
import { MAX_RULE_LENGTH } from '../data/item-rules/parse.js';
import { ProblemError } from './problem.js';

/**
 * Request shapes, once: routes parse with them and the OpenAPI document is
 * generated from them, so the two cannot disagree. Objects are strict
 * (an unknown field is an error, not silently ignored: a misspelt filter
 * would otherwise return unfiltered results).
 */

export const ExternalId = z
  .string()
  .trim()
  .min(1)
  .max(MAX_EXTERNAL_ID_LENGTH)
  // eslint-disable-next-line no-control-regex
  .regex(/^[^\u0000-\u001f\u007f]*$/, 'must not contain control characters');
/** Ids may come as JSON numbers too (many shops use integer ids). */
const IdInput = z.union([ExternalId, z.number().int().safe().transform(String)]);

const ItemList = (max: number) => z.array(ExternalId).min(1).max(max);
/** Comma-separated list in a query string. */
const QueryItemList = (max: number) =>
  z
    .string()
    .transform((s) => s.split(',').map((x) => x.trim()).filter(Boolean))
    .pipe(ItemList(max));

export const ExcludeSchema = z.enum(['purchased', 'seen', 'none']).default('purchased').describe('History items to leave out');
const K = (max: number, fallback: number) => z.coerce.number().int().min(1).max(max).default(fallback);
const Category = z.string().trim().min(1).max(256).describe('Only items of this category');
const FilterRule = z
  .string()
  .trim()
  .min(1)
  .max(MAX_RULE_LENGTH)
  .describe('Only items this rule holds for, over properties and the built-ins category, title, price, active and age (days), e.g. `stock > 0 AND brand IN ("a","b")` (docs/merchandising.md). Applied before the top k')
  .meta({ example: 'stock > 0 AND brand IN ("a","b")' });
const BoostRule = z
  .string()
  .trim()
  .min(1)
  .max(MAX_RULE_LENGTH)
  .describe('Boost rules separated by semicolons, `<factor> IF <condition>`: the items ranked by probability × the factors whose conditions hold, e.g. `1.5 IF tags = "promo"; 0.2 IF stock = 0`. A boost never brings back an item a filter leaves out')
  .meta({ example: '1.5 IF tags = "promo"; 0.2 IF stock = 0' });
const PropertyName = z.string().min(1).max(100);
const MaxPer = z
  .string()
  .trim()
  .min(3)
  .max(200)
  .describe('Diversity: name:n, at most n items with the same value of a built-in (category) or a property (brand, …), e.g. category:2; chosen greedily in rank order, items without the value uncapped')
  .meta({ example: 'category:2' });
const EXPLORE_DESCRIPTION = 'Exploration: this share of the k slots (0-0.5; the last ones, at least one when above 0) goes to items this server has shown least, new ones first, drawn at random among those the filters keep; they are marked exploration: true and the impression records their ranks';
const QueryExplore = z.coerce.number().min(0).max(0.5).describe(EXPLORE_DESCRIPTION);
const BodyExplore = z.number().min(0).max(0.5).describe(EXPLORE_DESCRIPTION);
/** At most this many pins a request. */
const MAX_PINS = 20;
const PinInput = z.strictObject({
  item: IdInput,
  slot: z.number().int().min(1).max(100).describe('1-based position in the answer, at most k'),
  reason: z.string().max(200).optional().describe('echoed on the item (a campaign, say)'),
});
/** Pins in a body; checked against k by the route (pinsWithin). */
const BodyPins = z.array(PinInput).min(1).max(MAX_PINS).describe('Items shown at fixed positions whatever their rank: filters and boosts do not apply to them (inactive or unknown items are reported in unplacedPins)');
/** Query form: item@slot, comma-separated. */
const QueryPins = z
  .string()
  .transform((s, ctx): { item: string; slot: number }[] => {
    const pins: { item: string; slot: number }[] = [];
    for (const part of s.split(',').map((x) => x.trim()).filter(Boolean)) {
      const at = part.lastIndexOf('@');
      const slot = Number(part.slice(at + 1));
      const item = part.slice(0, at).trim();
      if (at <= 0 || !Number.isInteger(slot) || slot < 1 || slot > 100 || item.length > MAX_EXTERNAL_ID_LENGTH) {
        ctx.addIssue({ code: 'custom', message: `'${part.slice(0, 60)}' is not item@slot (a slot of 1-100)` });
        return z.NEVER;
      }
      pins.push({ item, slot });
    }
    if (pins.length === 0 || pins.length > MAX_PINS) {
      ctx.addIssue({ code: 'custom', message: `give 1-${MAX_PINS} pins as item@slot, comma-separated` });
      return z.NEVER;
    }
    return pins;
  })
  .describe('Items shown at fixed positions whatever their rank, item@slot comma-separated (e.g. sku-9@1,sku-3@4): filters and boosts do not apply to them');

/** Pins fit the answer: each slot at most k, no slot or item twice. */
function pinsFit(value: { k: number; pins?: readonly { item: string; slot: number }[] | undefined }, ctx: z.RefinementCtx): void {
  const slots = new Set<number>();
  const items = new Set<string>();
  value.pins?.forEach((pin, i) => {
    if (pin.slot > value.k) ctx.addIssue({ code: 'custom', path: ['pins', i, 'slot'], message: `slot ${pin.slot} is past k (${value.k})` });
    else if (slots.has(pin.slot)) ctx.addIssue({ code: 'custom', path: ['pins', i, 'slot'], message: `slot ${pin.slot} is pinned twice` });
    if (items.has(pin.item)) ctx.addIssue({ code: 'custom', path: ['pins', i, 'item'], message: `item '${pin.item}' is pinned twice` });
    slots.add(pin.slot);
    items.add(pin.item);
  });
}
/** Query form: true, false, or comma-separated property names. */
const QueryReturnProperties = z
  .string()
  .transform((s, ctx): true | string[] | undefined => {
    if (s === 'true') return true;
    if (s === 'false') return undefined;
    const names = s.split(',').map((x) => x.trim()).filter(Boolean);
    if (names.length === 0 || names.length > 100 || names.some((n) => n.length > 100)) {
      ctx.addIssue({ code: 'custom', message: 'must be true, false or 1-100 comma-separated property names' });
      return z.NEVER;
    }
    return names;
  })
  .describe("true: each item's properties in the answer; a comma-separated list: only those properties");
const BodyReturnProperties = z
  .union([z.boolean(), z.array(PropertyName).min(1).max(100)])
  .transform((v): true | string[] | undefined => (v === false ? undefined : v))
  .describe("true: each item's properties in the answer; a list of names: only those properties");

export const RecommendationQuery = z.strictObject({
  k: K(100, 10).describe('How many items (1–100)'),
  exclude: ExcludeSchema,
  category: Category.optional(),
  includeItems: QueryItemList(1_000).optional().describe('Comma-separated item ids: recommend only among these'),
  excludeItems: QueryItemList(1_000).optional().describe('Comma-separated item ids never to recommend'),
  filter: FilterRule.optional(),
  boost: BoostRule.optional(),
  returnProperties: QueryReturnProperties.optional(),
  pins: QueryPins.optional(),
  maxPer: MaxPer.optional(),
  explore: QueryExplore.optional(),
}).superRefine(pinsFit);

export const NextSequenceQuery = z.strictObject({
  k: K(20, 3).describe('Length of the continuation (1–20)'),
  beam: z.coerce.number().int().min(1).max(20).default(5).describe('Beam width; 1 is greedy search'),
  exclude: ExcludeSchema,
  category: Category.optional(),
  includeItems: QueryItemList(1_000).optional(),
  excludeItems: QueryItemList(1_000).optional(),
  filter: FilterRule.optional(),
  returnProperties: QueryReturnProperties.optional(),
});

export const SimilarQuery = z.strictObject({
  k: K(100, 10),
  category: Category.optional(),
  includeItems: QueryItemList(1_000).optional(),
  excludeItems: QueryItemList(1_000).optional(),
  filter: FilterRule.optional(),
  returnProperties: QueryReturnProperties.optional(),
});

export const EmptyQuery = z.strictObject({});

export const EventInput = z.strictObject({
  userId: IdInput.optional().describe('The shopper, when known (a user id, a session id, or both)'),
  sessionId: IdInput.optional().describe('The visit; anonymous events have only this'),
  itemId: IdInput,
  type: z.string().min(1).max(64).describe('view, cart, purchase (aliases such as add_to_cart accepted) or a custom type'),
  timestamp: z.union([z.string().max(64), z.number()]).optional().describe('ISO 8601 or epoch seconds/milliseconds; default: now'),
  eventId: IdInput.optional().describe('Idempotency key: an event id already stored is not stored again'),
  recommendationId: z
    .uuid()
    .optional()
    .describe(
      'The recommendationId of the response that showed this item, when the shop knows it: the event is attributed to that response (if it showed the item, at most --attribution-window earlier). Without it, an event on an item shown to the same user or session within the window is attributed to the latest such response. An unknown or stale id leaves the event unattributed, never refused.',
    ),
  value: z.number().finite().optional(),
  quantity: z.number().int().positive().max(2_147_483_647).optional(),
});
export type EventInput = z.output<typeof EventInput>;

export const EventsBody = z.strictObject({ events: z.array(EventInput).min(1).max(1_000) });
/** The envelope alone: the route checks each event separately to report all bad ones. */
export const EventsQuery = z.strictObject({
  dryRun: z
    .enum(['true', 'false'])
    .default('false')
    .transform((v) => v === 'true')
    .describe('true: check the batch as it would be stored (unknown ids, duplicates, every row written) and roll it back; the answer says what storing it would do, and nothing is stored'),
});
export const EventsEnvelope = z.strictObject({ events: z.array(z.unknown()).min(1).max(1_000) });

export const InlineEventInput = z.strictObject({
  item: IdInput,
  type: z.string().min(1).max(64).default('view'),
});

/** The shop's id of the visit a request is for: the impression is recorded as shown to it. */
const ShownToSession = IdInput.optional().describe(
  "The shop's session id of this visit, as its events carry it (optional): the response's impression is recorded as shown to this session, so the session's later events on the items shown are attributed to it",
);

export const SessionRecommendationBody = z.strictObject({
  events: z.array(InlineEventInput).min(1).max(1_000).describe('The session, oldest event first'),
  sessionId: ShownToSession,
  k: z.number().int().min(1).max(100).default(10),
  exclude: ExcludeSchema,
  category: Category.optional(),
  includeItems: ItemList(1_000).optional(),
  excludeItems: ItemList(1_000).optional(),
  filter: FilterRule.optional(),
  boost: BoostRule.optional(),
  returnProperties: BodyReturnProperties.optional(),
  pins: BodyPins.optional(),
  maxPer: MaxPer.optional(),
  explore: BodyExplore.optional(),
}).superRefine(pinsFit);

export const RankBody = z
  .strictObject({
    user: IdInput.optional().describe('Rank for this stored user…'),
    session: z.array(InlineEventInput).min(1).max(1_000).optional().describe('…or for this inline session'),
    sessionId: ShownToSession,
    candidates: z.array(IdInput).min(1).max(500),
    exclude: ExcludeSchema,
    category: Category.optional(),
    excludeItems: ItemList(1_000).optional(),
    filter: FilterRule.optional(),
    boost: BoostRule.optional(),
    returnProperties: BodyReturnProperties.optional(),
  })
  .refine((b) => (b.user === undefined) !== (b.session === undefined), { message: 'give exactly one of user and session', path: ['user'] });

export const ItemInput = z.strictObject({
  id: IdInput,
  title: z.string().max(1_000).nullable().optional(),
  category: z.string().max(256).nullable().optional(),
  price: z.number().finite().min(0).nullable().optional(),
  active: z.boolean().optional(),
  properties: z
    .record(z.string(), z.unknown())
    .nullable()
    .optional()
    .superRefine((value, ctx) => {
      const problem = value ? propertiesProblem(value) : undefined;
      if (problem) ctx.addIssue({ code: 'custom', message: problem });
    })
    .transform((value) => value as ItemProperties | null | undefined)
    .describe('Any JSON object (brand, stock, margin, tags, ...), replacing what the item had; null removes them. Filter and boost rules read them (docs/merchandising.md)'),
});
export const ItemsBody = z.strictObject({ items: z.array(ItemInput).min(1).max(1_000) });

export const IdParam = z.strictObject({ id: ExternalId });
export const VersionParam = z.strictObject({ version: z.coerce.number().int().min(1).max(2 ** 31 - 1) });

/** Parses or throws VALIDATION_FAILED listing every problem with a JSON-pointer path. */
export function parse<S extends z.ZodType>(schema: S, value: unknown, where: 'body' | 'query' | 'path'): z.output<S> {
  if (where === 'body' && (value === undefined || value === null || typeof value !== 'object' || Array.isArray(value))) {
    throw new ProblemError('VALIDATION_FAILED', 'the body must be a JSON object', { errors: [{ in: 'body', pointer: '', message: 'expected an object' }] });
  }
  const result = schema.safeParse(value);
  if (result.success) return result.data;
  const errors = issuesOf(result.error, '', where);
  const first = errors[0]!;
  throw new ProblemError('VALIDATION_FAILED', `${where}${first.pointer}: ${first.message}${errors.length > 1 ? ` (and ${errors.length - 1} more)` : ''}`, { errors });
}

/** zod issues as { in, pointer (JSON Pointer, RFC 6901), message }, at most 50. */
export function issuesOf(error: z.ZodError, prefix: string, where: 'body' | 'query' | 'path' = 'body'): { in: string; pointer: string; message: string }[] {
  return error.issues.slice(0, 50).map((issue) => ({
    in: where,
    pointer: `${prefix}${issue.path.map((p) => `/${String(p).replace(/~/g, '~0').replace(/\//g, '~1')}`).join('')}`,
    message: issue.code === 'unrecognized_keys' ? `unknown field(s): ${(issue as { keys: string[] }).keys.join(', ')}` : issue.message,
  }));
}

const Version = z.coerce.number().int().min(1).max(2 ** 31 - 1);

export const AttentionQuery = z.strictObject({
  k: K(100, 10).describe('How many predictions (1–100)'),
  target: ExternalId.optional().describe('Item whose probability leave-one-out explains (default: the top prediction)'),
  version: Version.optional().describe('Model version to inspect (default: the serving one); any ready version'),
  exclude: z.enum(['purchased', 'seen', 'none']).default('none').describe('History items left out of the predictions (default none: the model as it is)'),
});

export const SessionAttentionBody = z.strictObject({
  events: z
    .array(z.strictObject({ item: IdInput, type: z.string().min(1).max(64).default('view'), timestamp: z.union([z.string().max(64), z.number()]).optional() }))
    .min(1)
    .max(1_000)
    .describe('The session, oldest event first'),
  k: z.number().int().min(1).max(100).default(10),
  target: ExternalId.optional(),
  version: z.number().int().min(1).max(2 ** 31 - 1).optional(),
  exclude: z.enum(['purchased', 'seen', 'none']).default('none'),
});

const VariantInput = z.strictObject({
  name: z
    .string()
    .regex(/^[A-Za-z0-9_.-]{1,40}$/, 'must be 1–40 letters, digits, _ . or -')
    .describe('Names the variant in results and impressions'),
  strategy: z.enum(['model', 'popular']).default('model').describe('model: a model version serves it; popular: the popular items'),
  modelVersion: z.number().int().min(1).max(2 ** 31 - 1).optional().describe('The ready model version a model variant serves'),
  share: z.number().gt(0).max(1).describe("This variant's share of the experiment's traffic; the shares sum to 1"),
  control: z.boolean().default(false).describe('The variant the others are compared with; exactly one'),
});

export const ExperimentBody = z.strictObject({
  name: z.string().trim().min(1).max(200),
  routes: z
    .array(z.enum(EXPERIMENT_ROUTES))
    .min(1)
    .default([...EXPERIMENT_ROUTES])
    .describe('The recommendation routes it takes over (its traffic slice; default all). At most one running experiment per route'),
  variants: z.array(VariantInput).min(2).max(10),
  guardrail: z
    .strictObject({
      alpha: z.number().gt(0).max(0.5).default(0.01).describe("Stop when a variant's purchase conversion is worse than control's at this significance (one-sided)"),
      minImpressions: z.number().int().min(1).default(1_000).describe('Not before each variant has this many impressions'),
    })
    .nullable()
    .default(null)
    .describe('Optional: stop the experiment by itself when a variant converts worse than control'),
  salt: z.string().regex(/^[A-Za-z0-9_-]{1,64}$/).optional().describe('Hash salt of the assignment (default: random); reuse one to keep a previous split'),
});
export type ExperimentInput = z.output<typeof ExperimentBody>;

/**
 * An experiment definition's every problem: its shape (zod) and the rules
 * across fields (shares sum to 1, one control, unique names, a version
 * exactly for model variants), read leniently from the raw body so that a
 * body with both kinds of problem names all of them.
 */
export function parseExperiment(body: unknown): ExperimentInput {
  if (body === undefined || body === null || typeof body !== 'object' || Array.isArray(body)) parse(ExperimentBody, body, 'body');
  const shaped = ExperimentBody.safeParse(body);
  const errors = shaped.success ? [] : issuesOf(shaped.error, '', 'body');
  const variants = (body as { variants?: unknown }).variants;
  if (Array.isArray(variants)) {
    const entries = variants.filter((v): v is Record<string, unknown> => typeof v === 'object' && v !== null);
    const shares = entries.map((v) => v.share);
    if (shares.length === variants.length && shares.every((s) => typeof s === 'number' && Number.isFinite(s))) {
      const sum = (shares as number[]).reduce((a, b) => a + b, 0);
      if (Math.abs(sum - 1) > 1e-9) errors.push({ in: 'body', pointer: '/variants', message: `the shares must sum to 1; they sum to ${Math.round(sum * 1e6) / 1e6}` });
    }
    const controls = entries.filter((v) => v.control === true).length;
    if (controls !== 1) errors.push({ in: 'body', pointer: '/variants', message: `exactly one variant must be the control (control: true); ${controls} are` });
    const seen = new Set<unknown>();
    variants.forEach((v, i) => {
      if (typeof v !== 'object' || v === null) return;
      const { name, strategy = 'model', modelVersion } = v as Record<string, unknown>;
      if (seen.has(name)) errors.push({ in: 'body', pointer: `/variants/${i}/name`, message: `'${String(name)}' names two variants` });
      seen.add(name);
      if (strategy === 'model' && modelVersion === undefined) errors.push({ in: 'body', pointer: `/variants/${i}/modelVersion`, message: 'a model variant needs the model version it serves' });
      if (strategy === 'popular' && modelVersion !== undefined) errors.push({ in: 'body', pointer: `/variants/${i}/modelVersion`, message: 'a popular variant serves no model version' });
    });
  }
  if (errors.length > 0 || !shaped.success) {
    const first = errors[0]!;
    throw new ProblemError('VALIDATION_FAILED', `body${first.pointer}: ${first.message}${errors.length > 1 ? ` (and ${errors.length - 1} more)` : ''}`, { errors: errors.slice(0, 50) });
  }
  return shaped.data;
}

export const ExperimentParam = z.strictObject({ id: z.coerce.number().int().min(1).max(2 ** 31 - 1) });
export const ExperimentStopBody = z.strictObject({ reason: z.string().trim().min(1).max(500).default('stopped by an admin') });
export const ExperimentListQuery = z.strictObject({ status: z.enum(['draft', 'running', 'stopped']).optional() });

const Instant = z
  .string()
  .trim()
  .min(1)
  .transform((s, ctx) => {
    const ms = /^\d+$/.test(s) ? Number(s) : Date.parse(s);
    if (!Number.isFinite(ms)) {
      ctx.addIssue({ code: 'custom', message: `'${s}' is neither an ISO 8601 instant nor epoch milliseconds` });
      return z.NEVER;
    }
    return ms;
  });

/** The longest period and the most buckets one online-metrics query may ask for. */
export const ONLINE_LIMITS = { maxDays: 366, maxBuckets: 1_000 } as const;
const BUCKET_MS = { none: 0, hour: 3_600_000, day: 86_400_000 } as const;

export const OnlineMetricsQuery = z.strictObject({
  from: Instant.optional().describe('Start of the period (impressions shown at or after it): ISO 8601 or epoch ms; default 7 days before `to`'),
  to: Instant.optional().describe('End of the period (exclusive); default now'),
  groupBy: z.enum(['version', 'variant', 'route']).default('version').describe('Group by the model version that answered, the experiment variant, or the route'),
  bucket: z.enum(['none', 'hour', 'day']).default('none').describe('Also split the period into hours or days (a series for plots)'),
  experiment: z.coerce.number().int().min(1).max(2 ** 31 - 1).optional().describe("Only this experiment's impressions"),
});

/** The query with its defaults applied and its period checked: from < to, at most 366 days, at most 1,000 buckets. */
export function parseOnlineQuery(query: unknown, now = Date.now()): { from: number; to: number; groupBy: 'version' | 'variant' | 'route'; bucket: 'none' | 'hour' | 'day'; bucketMs: number | undefined; experiment: number | undefined } {
  const q = parse(OnlineMetricsQuery, query, 'query');
  const to = q.to ?? now;
  const from = q.from ?? to - 7 * 86_400_000;
  const errors: { in: string; pointer: string; message: string }[] = [];
  if (from >= to) errors.push({ in: 'query', pointer: '/from', message: `must be before to (${new Date(from).toISOString()} is not before ${new Date(to).toISOString()})` });
  else if (to - from > ONLINE_LIMITS.maxDays * 86_400_000) errors.push({ in: 'query', pointer: '/from', message: `the period may span at most ${ONLINE_LIMITS.maxDays} days; it spans ${Math.ceil((to - from) / 86_400_000)}` });
  else if (q.bucket !== 'none' && (to - from) / BUCKET_MS[q.bucket] > ONLINE_LIMITS.maxBuckets) {
    errors.push({ in: 'query', pointer: '/bucket', message: `${Math.ceil((to - from) / BUCKET_MS[q.bucket])} ${q.bucket}s are more than the ${ONLINE_LIMITS.maxBuckets} buckets one query may return; use a coarser bucket or a shorter period` });
  }
  if (errors.length > 0) throw new ProblemError('VALIDATION_FAILED', `query${errors[0]!.pointer}: ${errors[0]!.message}`, { errors });
  return { from, to, groupBy: q.groupBy, bucket: q.bucket, bucketMs: q.bucket === 'none' ? undefined : BUCKET_MS[q.bucket], experiment: q.experiment };
}

/**
 * The shopper-facing request schemas, each with a skeleton input. zod compiles
 * an object schema's fast path at its first parse (1-3 ms each on this
 * machine, nested objects included when the input has them), on the event
 * loop: compileValidators runs them once at start-up, before the server
 * takes traffic, so the first requests after a start do not pay for it.
 */
const SHOPPER_SCHEMAS: readonly (readonly [z.ZodType, unknown])[] = [
  [EventsBody, { events: [{}] }],
  [EventsEnvelope, { events: [{}] }],
  [EventsQuery, {}],
  [IdParam, {}],
  [RecommendationQuery, {}],
  [NextSequenceQuery, {}],
  [SimilarQuery, {}],
  [SessionRecommendationBody, { events: [{}] }],
  [RankBody, {}],
];

/** Parses every shopper-facing schema once (see SHOPPER_SCHEMAS); the results are discarded. */
export function compileValidators(): void {
  for (const [schema, skeleton] of SHOPPER_SCHEMAS) schema.safeParse(skeleton);
}
