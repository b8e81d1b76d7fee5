import { z } from 'zod';

/**
 * The attention report's shape, once: the report's types are inferred from it, and the API's
 * OpenAPI document describes its responses with it. Objects are strict so a test that parses a
 * real response fails on a field the document does not describe.
 */

export const ReportItemSchema = z.strictObject({
  item: z.string(),
  title: z.string().nullable(),
  category: z.string().nullable(),
});

/** An input event as the report shows it. */
export const ReportEventSchema = z.strictObject({
  item: z.string(),
  title: z.string().nullable(),
  category: z.string().nullable(),
  type: z.string(),
  timestamp: z.string().nullable().describe('ISO 8601, or null when the caller gave no time'),
});

export const AttentionReportSchema = z
  .strictObject({
    modelVersion: z.number().int(),
    user: z.string().optional().describe('the stored user, for GET /v1/users/{id}/attention'),
    history: z.array(ReportEventSchema.extend({ position: z.number().int() })).describe('the events the model read, oldest first; positions index the matrices'),
    ignored: z.strictObject({ unknownItems: z.number().int(), beyondWindow: z.number().int() }),
    predictions: z.array(ReportItemSchema.extend({ probability: z.number(), score: z.number() })),
    target: ReportItemSchema.extend({ probability: z.number() }).describe('the item leave-one-out explains: the top prediction unless one was asked for'),
    attention: z
      .strictObject({
        members: z.number().int(),
        blocks: z.number().int(),
        layers: z.number().int(),
        heads: z.number().int(),
        length: z.number().int(),
        weights: z.array(z.array(z.array(z.array(z.array(z.number()))))),
      })
      .describe(
        "weights: per layer [1, heads, T, T] (the shape BertViz reads); row = the position attending, each row sums to 1 over positions at or before it. An ensemble model lists its members' layers one member after another: layers = members × blocks, member m's block b at index m · blocks + b.",
      ),
    rollout: z.array(z.number()).describe('attention rollout (Abnar & Zuidema 2020) from the last position to each position; sums to 1'),
    leaveOneOut: z
      .array(z.strictObject({ position: z.number().int(), without: z.number(), drop: z.number() }).nullable())
      .describe("the target's probability without each event, and the drop; null when removing it leaves nothing"),
  })
  .meta({ id: 'AttentionReport' });

export type ReportItem = z.output<typeof ReportItemSchema>;
export type ReportEvent = z.output<typeof ReportEventSchema>;
/** What the attention API returns, `jobs/inspect` exports and the /inspect page draws. */
export type AttentionReport = Omit<z.output<typeof AttentionReportSchema>, 'user'>;
