import type pg from 'pg';
import { from as copyFrom } from 'pg-copy-streams';
import { pipeline } from 'node:stream/promises';
import { Readable } from 'node:stream';
import type { CatalogRow } from './catalog.js';
import { encodeStagingCopy } from './pg-binary-copy.js';
import { catalogColumns, lastRowPerItem, type ImportTarget, type PreparedEvents, type ResolvedEvents, type SessionRef } from './import-target.js';

interface PreparedCopy extends PreparedEvents {
  readonly data: Buffer;
}

const STAGING = 'attnrec_import_staging';

/**
 * Bulk import into PostgreSQL on one pooled connection and one transaction:
 * each batch is COPYed (binary) into an index-free temporary table, then moved into
 * `events` by a single INSERT … SELECT … ON CONFLICT DO NOTHING, which skips
 * duplicates by event id or content key and reports how many rows were new.
 */
export async function postgresImportTarget(pool: pg.Pool): Promise<ImportTarget> {
  const client = await pool.connect();
  const created = { users: 0, items: 0, sessions: 0 };
  let staged = false;
  let released = false;
  const release = (error?: Error): void => {
    if (!released) {
      released = true;
      client.release(error);
    }
  };

  /** Ends the transaction and returns the connection; a connection that failed is destroyed, not reused. */
  async function endTransaction(command: 'COMMIT' | 'ROLLBACK'): Promise<void> {
    try {
      await client.query(command);
      release();
    } catch (error) {
      release(error as Error);
      throw error;
    }
  }

  async function resolveByExternalId(table: 'users' | 'items', ids: readonly string[]): Promise<number[]> {
    if (ids.length === 0) return [];
    // In external-id order, the unique index on external_id is appended to rather than split at random.
    const inserted = await client.query(`INSERT INTO ${table} (external_id) SELECT e FROM unnest($1::text[]) AS u(e) ORDER BY e ON CONFLICT (external_id) DO NOTHING`, [ids]);
    created[table] += inserted.rowCount ?? 0;
    const { rows } = await client.query<{ id: number; external_id: string }>(`SELECT id, external_id FROM ${table} WHERE external_id = ANY($1::text[])`, [ids]);
    const byExternal = new Map(rows.map((r) => [r.external_id, r.id]));
    return ids.map((id) => byExternal.get(id)!);
  }

  return {
    created,
    async begin() {
      await client.query('BEGIN');
      await client.query(
        `CREATE TEMP TABLE ${STAGING} (user_id int, session_id int, item_id int, type_id int, ts_ms bigint, value float8, quantity int, event_id text, recommendation_id text) ON COMMIT DROP`,
      );
    },
    async eventTypes() {
      const { rows } = await client.query<{ id: number; name: string }>('SELECT id, name FROM event_types');
      return new Map(rows.map((r) => [r.name, r.id]));
    },
    async addEventTypes(types) {
      if (types.length === 0) return;
      await client.query('INSERT INTO event_types (id, name) SELECT * FROM unnest($1::int[], $2::text[])', [types.map((t) => t.id), types.map((t) => t.name)]);
    },
    resolveUsers: (ids) => resolveByExternalId('users', ids),
    resolveItems: (ids) => resolveByExternalId('items', ids),
    async resolveSessions(sessions) {
      if (sessions.length === 0) return [];
      const externalIds = sessions.map((s) => s.externalId);
      const fresh = await client.query<{ id: number; external_id: string }>(
        `INSERT INTO sessions (external_id, user_id) SELECT * FROM unnest($1::text[], $2::int[]) AS u(e, uid) ORDER BY e
         ON CONFLICT (external_id) DO NOTHING RETURNING id, external_id`,
        [externalIds, sessions.map((s) => s.userId)],
      );
      created.sessions += fresh.rows.length;
      const refs = new Map<string, SessionRef>();
      const wantedUser = new Map(sessions.map((s) => [s.externalId, s.userId]));
      for (const r of fresh.rows) refs.set(r.external_id, { id: r.id, userId: wantedUser.get(r.external_id)! });
      const existing = externalIds.filter((id) => !refs.has(id));
      if (existing.length > 0) {
        // Sessions seen before: attach the user where the session had none, then read them back.
        await client.query(
          `UPDATE sessions s SET user_id = u.user_id FROM unnest($1::text[], $2::int[]) AS u(external_id, user_id)
            WHERE s.external_id = u.external_id AND s.user_id IS NULL AND u.user_id IS NOT NULL`,
          [existing, existing.map((id) => wantedUser.get(id))],
        );
        const { rows } = await client.query<{ id: number; external_id: string; user_id: number | null }>(
          'SELECT id, external_id, user_id FROM sessions WHERE external_id = ANY($1::text[])',
          [existing],
        );
        for (const r of rows) refs.set(r.external_id, { id: r.id, userId: r.user_id });
      }
      return sessions.map((s) => refs.get(s.externalId)!);
    },
    async upsertCatalog(rows: readonly CatalogRow[]) {
      const unique = lastRowPerItem(rows);
      if (unique.length === 0) return { inserted: 0, updated: 0 };
      const columns = catalogColumns(unique);
      const set = columns.length > 0 ? `DO UPDATE SET ${columns.map((c) => `${c} = EXCLUDED.${c}`).join(', ')}` : 'DO NOTHING';
      const { rows: result } = await client.query<{ inserted: boolean }>(
        `INSERT INTO items (external_id, title, category, price, active, properties)
         SELECT e, t, c, p, COALESCE(a, true), j::jsonb FROM unnest($1::text[], $2::text[], $3::text[], $4::float8[], $5::bool[], $6::text[]) AS u(e, t, c, p, a, j)
         ON CONFLICT (external_id) ${set}
         RETURNING (xmax = 0) AS inserted`,
        [
          unique.map((r) => r.externalId),
          unique.map((r) => r.title ?? null),
          unique.map((r) => r.category ?? null),
          unique.map((r) => r.price ?? null),
          unique.map((r) => r.active ?? null),
          unique.map((r) => (r.properties ? JSON.stringify(r.properties) : null)),
        ],
      );
      const inserted = result.filter((r) => r.inserted).length;
      created.items += inserted;
      return { inserted, updated: unique.length - inserted };
    },
    prepareEvents(e: ResolvedEvents) {
      return { count: e.count, data: encodeStagingCopy(e) } satisfies PreparedCopy;
    },
    async stageEvents(prepared) {
      const { count, data } = prepared as PreparedCopy;
      if (count === 0) return;
      await pipeline(Readable.from([data]), client.query(copyFrom(`COPY ${STAGING} FROM STDIN (FORMAT binary)`)));
      staged = true;
    },
    async flushStaged() {
      if (!staged) return 0;
      staged = false;
      const result = await client.query(
        `INSERT INTO events (user_id, session_id, item_id, type_id, ts, value, quantity, event_id, recommendation_id)
         SELECT user_id, session_id, item_id, type_id, TIMESTAMP '1970-01-01' + ts_ms * INTERVAL '1 millisecond', value, quantity, event_id, recommendation_id
         FROM ${STAGING} ON CONFLICT DO NOTHING`,
      );
      await client.query(`TRUNCATE ${STAGING}`);
      return result.rowCount ?? 0;
    },
    async notify(channel, payload) {
      await client.query('SELECT pg_notify($1, $2)', [channel, payload]);
    },
    commit: () => endTransaction('COMMIT'),
    // A failed rollback leaves nothing to save: the connection is discarded, the transaction with it.
    rollback: () => endTransaction('ROLLBACK').catch(() => {}),
  };
}

