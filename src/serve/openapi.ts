import { z } from 'zod';
import { PROBLEM_CODES } from './problem.js';
import {
  EventsBody,
  ItemsBody,
  NextSequenceQuery,
  RankBody,
  RecommendationQuery,
  SessionRecommendationBody,
  SimilarQuery,
  AttentionQuery,
  SessionAttentionBody,
} from './validation.js';

/**
 * The OpenAPI 3.1 description of the API, served at /v1/openapi.json. Request
 * bodies and query parameters are generated from the same zod schemas the
 * routes validate with; responses are described here.
 */
type Json = Record<string, unknown>;

const jsonSchema = (schema: z.ZodType): Json => {
  const { $schema: _drop, ...rest } = z.toJSONSchema(schema, { io: 'input', unrepresentable: 'any' }) as Json;
  return rest;
};

const queryParameters = (schema: z.ZodObject): Json[] =>
  Object.entries(schema.shape).map(([name, field]) => {
    const s = jsonSchema(field as z.ZodType);
    return { name, in: 'query', required: false, schema: s, ...(typeof s.description === 'string' && { description: s.description }) };
  });

const idParameter = (name: string, description: string): Json => ({ name, in: 'path', required: true, schema: { type: 'string', minLength: 1, maxLength: 256 }, description });
const ref = (name: string): Json => ({ $ref: `#/components/schemas/${name}` });
const json = (schema: Json): Json => ({ 'application/json': { schema } });
const ok = (description: string, schema: Json): Json => ({ description, content: json(schema) });
const problems = (...codes: string[]): Json =>
  Object.fromEntries(
    [...new Set(codes.map((c) => PROBLEM_CODES[c]!.status))].map((status) => [
      String(status),
      {
        description: codes.filter((c) => PROBLEM_CODES[c]!.status === status).join(', '),
        content: { 'application/problem+json': { schema: ref('Problem') } },
      },
    ]),
  );
const AUTH_ERRORS = ['UNAUTHORIZED', 'FORBIDDEN', 'RATE_LIMITED'];
const READ_ERRORS = ['VALIDATION_FAILED', ...AUTH_ERRORS, 'MODEL_NOT_LOADED', 'DATABASE_UNAVAILABLE', 'INFERENCE_UNAVAILABLE'];
const BODY_ERRORS = ['BAD_JSON', 'BODY_TOO_LARGE', 'UNSUPPORTED_MEDIA_TYPE'];

const recommendedItem: Json = {
  type: 'object',
  required: ['item', 'title', 'category', 'price', 'probability', 'score'],
  properties: {
    item: { type: 'string' },
    title: { type: ['string', 'null'] },
    category: { type: ['string', 'null'] },
    price: { type: ['number', 'null'] },
    probability: { type: 'number', description: 'strategy model: softmax of the scores over the whole catalogue of the model; popular: share of the window\'s events' },
    score: { type: 'number', description: 'model: the logit — the attention network\'s, plus the version\'s co-occurrence term when it has one (next-sequence: the step\'s log-probability); popular: event count in the window' },
  },
};
const strategy: Json = { type: 'string', enum: ['model', 'popular'], description: 'popular when no model serves or the history has no item the model knows (cold start)' };
const history: Json = {
  type: 'object',
  properties: { events: { type: 'integer' }, used: { type: 'integer', description: 'events the model read: items it knows, the last maxLength' } },
};
const recommendations: Json = {
  type: 'object',
  required: ['strategy', 'modelVersion', 'items', 'history'],
  properties: { strategy, modelVersion: { type: ['integer', 'null'] }, items: { type: 'array', items: ref('RecommendedItem') }, history },
};

export function openApiDocument(): Json {
  return {
    openapi: '3.1.0',
    info: {
      title: 'attnrec',
      version: '1',
      description:
        'Next-item recommendations from a self-attention model (SASRec) over shoppers\' event histories. Every error is RFC 9457 ' +
        'application/problem+json with a stable `code`. Authenticate with `Authorization: Bearer <key>` or `X-API-Key`; read keys may ' +
        'call recommendation routes, write keys may also send events, admin keys may also manage items and models. Every authenticated ' +
        'response carries `RateLimit-Policy` and `RateLimit` headers; over the limit, 429 with `Retry-After`.',
    },
    servers: [{ url: '/' }],
    security: [{ bearer: [] }, { apiKey: [] }],
    paths: {
      '/v1/events': {
        post: {
          summary: 'Store 1–1,000 events (all or none)',
          description: 'Unknown users, sessions and items are created (items rejected with --strict-catalog). An event is stored once: replaying an eventId, or the same owner, item, type and timestamp, is counted as a duplicate.',
          'x-required-role': 'write',
          requestBody: { required: true, content: json(jsonSchema(EventsBody)) },
          responses: {
            '200': ok('Stored', { type: 'object', properties: { received: { type: 'integer' }, stored: { type: 'integer' }, duplicates: { type: 'integer' } } }),
            ...problems('VALIDATION_FAILED', ...BODY_ERRORS, ...AUTH_ERRORS, 'UNKNOWN_ITEMS', 'DATABASE_UNAVAILABLE'),
          },
        },
      },
      '/v1/items': {
        put: {
          summary: 'Insert or update 1–1,000 catalogue items',
          description: 'Only the attributes given are written. `active: false` hides an item from recommendations.',
          'x-required-role': 'admin',
          requestBody: { required: true, content: json(jsonSchema(ItemsBody)) },
          responses: {
            '200': ok('Written', { type: 'object', properties: { inserted: { type: 'integer' }, updated: { type: 'integer' } } }),
            ...problems('VALIDATION_FAILED', ...BODY_ERRORS, ...AUTH_ERRORS),
          },
        },
      },
      '/v1/items/{id}': {
        parameters: [idParameter('id', 'The shop\'s item id')],
        get: { summary: 'One catalogue item', 'x-required-role': 'read', responses: { '200': ok('The item', ref('Item')), ...problems('ITEM_NOT_FOUND', ...AUTH_ERRORS) } },
        delete: {
          summary: 'Deactivate an item (soft delete: its events stay, it is never recommended)',
          'x-required-role': 'admin',
          responses: { '200': ok('The item, now inactive', ref('Item')), ...problems('ITEM_NOT_FOUND', ...AUTH_ERRORS) },
        },
      },
      '/v1/items/{id}/similar': {
        get: {
          summary: 'Nearest items by the model\'s item embeddings (cosine)',
          'x-required-role': 'read',
          parameters: [idParameter('id', 'The shop\'s item id'), ...queryParameters(SimilarQuery)],
          responses: {
            '200': ok('Similar items', {
              type: 'object',
              properties: {
                modelVersion: { type: 'integer' },
                item: { type: 'string' },
                items: { type: 'array', items: { type: 'object', properties: { item: { type: 'string' }, title: { type: ['string', 'null'] }, category: { type: ['string', 'null'] }, price: { type: ['number', 'null'] }, similarity: { type: 'number' } } } },
              },
            }),
            ...problems('ITEM_NOT_FOUND', 'ITEM_NOT_IN_MODEL', ...READ_ERRORS),
          },
        },
      },
      '/v1/users/{id}/recommendations': {
        get: {
          summary: 'The k most probable next items for a stored user',
          'x-required-role': 'read',
          parameters: [idParameter('id', 'The shop\'s user id (an unknown user gets the cold-start answer)'), ...queryParameters(RecommendationQuery)],
          responses: { '200': ok('Recommendations', { ...recommendations, properties: { user: { type: 'string' }, ...(recommendations.properties as Json) } }), ...problems(...READ_ERRORS) },
        },
      },
      '/v1/sessions/recommendations': {
        post: {
          summary: 'The k most probable next items for an anonymous session given inline (nothing is stored)',
          'x-required-role': 'read',
          requestBody: { required: true, content: json(jsonSchema(SessionRecommendationBody)) },
          responses: { '200': ok('Recommendations', recommendations), ...problems(...READ_ERRORS, ...BODY_ERRORS) },
        },
      },
      '/v1/users/{id}/next-sequence': {
        get: {
          summary: 'The most probable continuation of k items (beam search; greedy with beam=1)',
          'x-required-role': 'read',
          parameters: [idParameter('id', 'The shop\'s user id'), ...queryParameters(NextSequenceQuery)],
          responses: {
            '200': ok('Continuation', {
              type: 'object',
              properties: {
                user: { type: 'string' },
                beam: { type: 'integer' },
                strategy,
                modelVersion: { type: ['integer', 'null'] },
                items: { type: 'array', items: ref('RecommendedItem') },
                probability: { type: ['number', 'null'], description: 'probability of the whole sequence' },
                alternatives: { type: 'array', items: { type: 'object', properties: { items: { type: 'array', items: { type: 'string' } }, probability: { type: 'number' } } } },
                history,
              },
            }),
            ...problems(...READ_ERRORS),
          },
        },
      },
      '/v1/rank': {
        post: {
          summary: 'Re-rank up to 500 candidate items for a user or an inline session',
          'x-required-role': 'read',
          requestBody: { required: true, content: json(jsonSchema(RankBody)) },
          responses: {
            '200': ok('Ranked candidates, most probable first', {
              type: 'object',
              properties: {
                ...(recommendations.properties as Json),
                dropped: { type: 'array', items: { type: 'object', properties: { item: { type: 'string' }, reason: { type: 'string', enum: ['unknown', 'inactive', 'not_in_model', 'filtered'] } } } },
              },
            }),
            ...problems(...READ_ERRORS, ...BODY_ERRORS),
          },
        },
      },
      '/v1/models': {
        get: {
          summary: 'Model versions, newest first, and the one serving',
          'x-required-role': 'read',
          responses: { '200': ok('Versions', { type: 'object', properties: { serving: { type: ['integer', 'null'] }, versions: { type: 'array', items: ref('ModelVersion') } } }), ...problems(...AUTH_ERRORS) },
        },
      },
      '/v1/models/{version}/activate': {
        post: {
          summary: 'Serve this version (roll forward or back, no restart, no failed request)',
          description:
            'Loads the version in every inference worker, then warms the user cache for it (most recently active shoppers first) while the current version keeps serving, for up to the server\'s --activation-warm-up seconds (default 60), and only then switches: the answer comes when the version serves. Shoppers never meet an empty cache at the switch; a warm-up cut short goes on afterwards.',
          'x-required-role': 'admin',
          parameters: [{ name: 'version', in: 'path', required: true, schema: { type: 'integer', minimum: 1 } }],
          responses: {
            '200': ok('Serving', { type: 'object', properties: { serving: { type: 'integer' }, numItems: { type: 'integer' } } }),
            ...problems('VALIDATION_FAILED', 'MODEL_VERSION_NOT_FOUND', 'MODEL_VERSION_NOT_READY', 'ARTIFACT_CORRUPT', ...AUTH_ERRORS),
          },
        },
      },
      '/v1/users/{id}/attention': {
        get: {
          summary: 'Which past events the prediction attended to: weights per layer and head, rollout, leave-one-out attribution',
          'x-required-role': 'read',
          parameters: [idParameter('id', 'The shop\'s user id'), ...queryParameters(AttentionQuery)],
          responses: { '200': ok('Attention report', ref('AttentionReport')), ...problems('USER_NOT_FOUND', 'ITEM_NOT_FOUND', 'ITEM_NOT_IN_MODEL', 'NO_USABLE_HISTORY', 'MODEL_VERSION_NOT_FOUND', ...READ_ERRORS) },
        },
      },
      '/v1/sessions/attention': {
        post: {
          summary: 'The same for an inline session (nothing stored)',
          'x-required-role': 'read',
          requestBody: { required: true, content: json(jsonSchema(SessionAttentionBody)) },
          responses: { '200': ok('Attention report', ref('AttentionReport')), ...problems('ITEM_NOT_FOUND', 'ITEM_NOT_IN_MODEL', 'NO_USABLE_HISTORY', 'MODEL_VERSION_NOT_FOUND', ...READ_ERRORS, ...BODY_ERRORS) },
        },
      },
      '/health/live': { get: { summary: 'The process is up', security: [], responses: { '200': ok('Alive', { type: 'object' }) } } },
      '/health/ready': {
        get: {
          summary: 'Ready: the database answers and a model is loaded (or the popular fallback is on)',
          security: [],
          responses: { '200': ok('Ready', { type: 'object' }), ...problems('DATABASE_UNAVAILABLE', 'MODEL_NOT_LOADED', 'SHUTTING_DOWN') },
        },
      },
      '/metrics': { get: { summary: 'Prometheus metrics', security: [], responses: { '200': { description: 'text/plain exposition format' } } } },
      '/v1/openapi.json': { get: { summary: 'This document', security: [], responses: { '200': { description: 'OpenAPI 3.1' } } } },
    },
    components: {
      securitySchemes: {
        bearer: { type: 'http', scheme: 'bearer' },
        apiKey: { type: 'apiKey', in: 'header', name: 'X-API-Key' },
      },
      schemas: {
        RecommendedItem: recommendedItem,
        Item: {
          type: 'object',
          properties: { id: { type: 'string' }, title: { type: ['string', 'null'] }, category: { type: ['string', 'null'] }, price: { type: ['number', 'null'] }, active: { type: 'boolean' }, inModel: { type: 'boolean' } },
        },
        ModelVersion: {
          type: 'object',
          properties: {
            version: { type: 'integer' },
            status: { type: 'string', enum: ['training', 'ready', 'failed'] },
            active: { type: 'boolean' },
            loaded: { type: 'boolean' },
            createdAt: { type: 'string', format: 'date-time' },
            dataHash: { type: 'string' },
            backend: { type: ['string', 'null'] },
            test: { type: ['object', 'null'], description: 'test metrics recorded by the training job' },
          },
        },
        AttentionReport: {
          type: 'object',
          properties: {
            modelVersion: { type: 'integer' },
            user: { type: 'string' },
            history: { type: 'array', description: 'the events the model read, oldest first; positions index the matrices', items: { type: 'object', properties: { position: { type: 'integer' }, item: { type: 'string' }, title: { type: ['string', 'null'] }, category: { type: ['string', 'null'] }, type: { type: 'string' }, timestamp: { type: ['string', 'null'], format: 'date-time' } } } },
            ignored: { type: 'object', properties: { unknownItems: { type: 'integer' }, beyondWindow: { type: 'integer' } } },
            predictions: { type: 'array', items: ref('RecommendedItem') },
            target: { type: 'object', properties: { item: { type: 'string' }, probability: { type: 'number' } } },
            attention: {
              type: 'object',
              description:
                'weights: per layer [1, heads, T, T] (the shape BertViz reads); row = the position attending, each row sums to 1 over positions at or before it. An ensemble model lists its members\' layers one member after another: layers = members × blocks, member m\'s block b at index m · blocks + b.',
              properties: { members: { type: 'integer' }, blocks: { type: 'integer' }, layers: { type: 'integer' }, heads: { type: 'integer' }, length: { type: 'integer' }, weights: { type: 'array' } },
            },
            rollout: { type: 'array', items: { type: 'number' }, description: 'attention rollout (Abnar & Zuidema 2020) from the last position to each position; sums to 1' },
            leaveOneOut: { type: 'array', items: { type: ['object', 'null'], properties: { position: { type: 'integer' }, without: { type: 'number' }, drop: { type: 'number' } } }, description: "the target's probability without each event, and the drop; null when removing it leaves nothing" },
          },
        },
        Problem: {
          type: 'object',
          required: ['type', 'title', 'status', 'detail', 'code'],
          properties: {
            type: { type: 'string' },
            title: { type: 'string' },
            status: { type: 'integer' },
            detail: { type: 'string' },
            code: { type: 'string', enum: Object.keys(PROBLEM_CODES) },
            instance: { type: 'string' },
            errors: { type: 'array', items: { type: 'object', properties: { in: { type: 'string' }, pointer: { type: 'string' }, message: { type: 'string' }, code: { type: 'string' } } } },
          },
        },
      },
    },
  };
}
