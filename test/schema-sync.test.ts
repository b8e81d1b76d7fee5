import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PROVIDERS, renderSchema, schemaPath } from '../scripts/prisma-schemas.js';
import { describeEachProvider, scratchStore } from './support/test-stores.js';
import type { Store } from '../src/data/store.js';

const models = readFileSync(new URL('../prisma/models.prisma', import.meta.url), 'utf8');
const SCALARS = new Set(['Int', 'BigInt', 'String', 'Float', 'Boolean', 'DateTime', 'Json', 'Bytes', 'Decimal']);

interface ExpectedColumn {
  table: string;
  column: string;
  nullable: boolean;
}

/** Tables and scalar columns that prisma/models.prisma declares (after @map / @@map). */
function expectedColumns(source: string): ExpectedColumn[] {
  const columns: ExpectedColumn[] = [];
  for (const block of source.matchAll(/^model (\w+) \{([\s\S]*?)^\}/gm)) {
    const body = block[2] ?? '';
    const table = /@@map\("([^"]+)"\)/.exec(body)?.[1] ?? block[1]!;
    for (const line of body.split('\n')) {
      const field = /^\s+(\w+)\s+(\w+)(\?|\[\])?(.*)$/.exec(line);
      if (!field || !SCALARS.has(field[2]!) || field[3] === '[]') continue;
      const column = /@map\("([^"]+)"\)/.exec(field[4] ?? '')?.[1] ?? field[1]!;
      columns.push({ table, column, nullable: field[3] === '?' });
    }
  }
  return columns.sort((a, b) => `${a.table}.${a.column}`.localeCompare(`${b.table}.${b.column}`));
}

async function actualColumns(store: Store): Promise<ExpectedColumn[]> {
  const columns: ExpectedColumn[] = [];
  if (store.provider === 'sqlite') {
    const tables = store.db
      .prepare(`SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' AND name NOT LIKE '\\_%' ESCAPE '\\'`)
      .pluck()
      .all() as string[];
    for (const table of tables) {
      const info = store.db.prepare(`PRAGMA table_info(${table})`).all() as { name: string; notnull: number; pk: number }[];
      // INTEGER PRIMARY KEY is never NULL in SQLite even without NOT NULL.
      for (const c of info) columns.push({ table, column: c.name, nullable: c.notnull === 0 && c.pk === 0 });
    }
  } else {
    const { rows } = await store.pool.query<{ table_name: string; column_name: string; is_nullable: string }>(
      `SELECT table_name, column_name, is_nullable FROM information_schema.columns
        WHERE table_schema = 'public' AND table_name NOT LIKE '\\_%'`,
    );
    for (const r of rows) columns.push({ table: r.table_name, column: r.column_name, nullable: r.is_nullable === 'YES' });
  }
  return columns.sort((a, b) => `${a.table}.${a.column}`.localeCompare(`${b.table}.${b.column}`));
}

describe('provider schemas', () => {
  it.each(PROVIDERS)('schema for %s is generated from prisma/models.prisma (run `npm run db:schemas`)', (provider) => {
    expect(readFileSync(schemaPath(provider), 'utf8')).toBe(renderSchema(provider, models));
  });

  it('the model parser finds every model', () => {
    const tables = new Set(expectedColumns(models).map((c) => c.table));
    expect([...tables].sort()).toEqual(['attribution_cursors', 'attributions', 'event_types', 'events', 'experiment_variants', 'experiments', 'impressions', 'item_embeddings', 'items', 'model_versions', 'rate_limits', 'recommendation_exports', 'sessions', 'users']);
  });
});

describeEachProvider('SQL migrations match the Prisma models', (provider) => {
  let store: Awaited<ReturnType<typeof scratchStore>>;
  beforeAll(async () => {
    store = await scratchStore(provider);
  });
  afterAll(() => store.dispose());

  it('has exactly the declared tables and columns, with the declared nullability', async () => {
    expect(await actualColumns(store)).toEqual(expectedColumns(models));
  });

  it('round-trips every model through Prisma', async () => {
    const prisma = store.prisma;
    const user = await prisma.user.create({ data: { externalId: 'u-1' } });
    const session = await prisma.session.create({ data: { externalId: 's-1', userId: user.id } });
    const item = await prisma.item.create({ data: { externalId: 'sku-1', title: 'Zelda', category: 'games', price: 59.99 } });
    const ts = new Date('2024-05-06T07:08:09.123Z');
    const event = await prisma.event.create({
      data: { userId: user.id, sessionId: session.id, itemId: item.id, typeId: 3, ts, value: 59.99, quantity: 2, eventId: 'e-1' },
    });
    expect(typeof event.id).toBe('bigint');
    const types = await prisma.eventType.findMany({ orderBy: { id: 'asc' } });
    expect(types.map((t) => t.name)).toEqual(['view', 'cart', 'purchase']);

    const version = await prisma.modelVersion.create({
      data: { status: 'ready', config: { dim: 2, seed: 7 }, dataHash: 'abc', metrics: { ndcg10: 0.5 }, artifactPath: 'models/1' },
    });
    const vector = Buffer.from(new Float32Array([0.25, -1.5]).buffer);
    await prisma.itemEmbedding.create({ data: { modelVersionId: version.id, itemId: item.id, vector } });

    const loaded = await prisma.event.findUniqueOrThrow({ where: { eventId: 'e-1' }, include: { item: true, user: true, session: true, type: true } });
    expect(loaded.ts.toISOString()).toBe(ts.toISOString());
    expect(loaded.item.price).toBeCloseTo(59.99);
    expect(loaded.type.name).toBe('purchase');
    expect(loaded.session?.externalId).toBe('s-1');
    const embedding = await prisma.itemEmbedding.findUniqueOrThrow({ where: { modelVersionId_itemId: { modelVersionId: version.id, itemId: item.id } } });
    expect(Array.from(new Float32Array(new Uint8Array(embedding.vector).buffer))).toEqual([0.25, -1.5]);
    const reloaded = await prisma.modelVersion.findUniqueOrThrow({ where: { id: version.id } });
    expect(reloaded.config).toEqual({ dim: 2, seed: 7 });
    expect(reloaded.active).toBe(false);
    expect(Math.abs(reloaded.createdAt.getTime() - Date.now())).toBeLessThan(60_000);

    await prisma.rateLimit.create({ data: { key: 'attnrec:read', points: 3, expire: 1_700_000_000_000n } });
    expect(await prisma.rateLimit.findUniqueOrThrow({ where: { key: 'attnrec:read' } })).toEqual({ key: 'attnrec:read', points: 3, expire: 1_700_000_000_000n });

    const shownAt = new Date('2026-12-03T06:00:00.123Z');
    await prisma.impression.create({
      data: {
        id: '019ae2d6-7e1b-7000-8000-000000000001',
        ts: shownAt,
        route: 'user_recommendations',
        strategy: 'model',
        modelVersion: version.id,
        userId: 'u-1',
        itemIds: [item.id, null],
        probabilities: [0.25, 0.125],
        scores: [1.5, null],
      },
    });
    const shown = await prisma.impression.findUniqueOrThrow({ where: { id: '019ae2d6-7e1b-7000-8000-000000000001' } });
    expect(shown).toMatchObject({ route: 'user_recommendations', variant: null, sessionId: null, itemIds: [item.id, null], probabilities: [0.25, 0.125], scores: [1.5, null] });
    expect(shown.ts.toISOString()).toBe(shownAt.toISOString());

    const explicit = await prisma.event.create({
      data: { userId: user.id, itemId: item.id, typeId: 1, ts: new Date('2026-12-03T06:01:00.000Z'), recommendationId: '019ae2d6-7e1b-7000-8000-000000000001' },
    });
    const attribution = {
      impressionId: '019ae2d6-7e1b-7000-8000-000000000001',
      eventKey: explicit.id,
      kind: 'explicit',
      rank: 1,
      itemId: item.id,
      typeId: 1,
      value: 9.5,
      quantity: 2,
      ts: new Date('2026-12-03T06:01:00.000Z'),
      route: 'user_recommendations',
      strategy: 'model',
      modelVersion: version.id,
      variant: 'b',
      experimentId: 3,
    };
    await prisma.attribution.create({ data: attribution });
    expect(await prisma.attribution.findUniqueOrThrow({ where: { eventKey: explicit.id } })).toEqual(attribution);
    // One attribution per event, and only the two kinds.
    await expect(prisma.attribution.create({ data: { ...attribution, impressionId: '019ae2d6-7e1b-7000-8000-000000000002' } })).rejects.toThrow();
    await expect(prisma.attribution.create({ data: { ...attribution, eventKey: explicit.id + 1n, kind: 'guess' } })).rejects.toThrow();
    // The migration seeded the cursor (no events then).
    expect(await prisma.attributionCursor.findUniqueOrThrow({ where: { name: 'events' } })).toMatchObject({ eventKey: 0n });
  });

  it('allows at most one active model version', async () => {
    const base = { status: 'ready', config: {}, dataHash: 'h', artifactPath: 'p', active: true };
    await store.prisma.modelVersion.create({ data: base });
    await expect(store.prisma.modelVersion.create({ data: base })).rejects.toThrow();
  });

  it('rejects an event with neither user nor session', async () => {
    const item = await store.prisma.item.create({ data: { externalId: 'orphan-item' } });
    await expect(store.prisma.event.create({ data: { itemId: item.id, typeId: 1, ts: new Date() } })).rejects.toThrow();
  });
});
