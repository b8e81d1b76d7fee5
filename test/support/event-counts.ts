import type { Store } from '../../src/data/store.js';

/** Row counts of the event store's tables, straight from SQL. */
export async function tableCounts(store: Store): Promise<Record<'users' | 'items' | 'sessions' | 'events' | 'event_types', number>> {
  const tables = ['users', 'items', 'sessions', 'events', 'event_types'] as const;
  const out = {} as Record<(typeof tables)[number], number>;
  for (const table of tables) {
    out[table] =
      store.provider === 'sqlite'
        ? (store.db.prepare(`SELECT COUNT(*) FROM ${table}`).pluck().get() as number)
        : Number((await store.pool.query<{ n: string }>(`SELECT COUNT(*) AS n FROM ${table}`)).rows[0]!.n);
  }
  return out;
}

/** All events with external ids, oldest first, for exact comparisons. */
export async function eventDump(store: Store): Promise<{ user: string | null; session: string | null; item: string; type: string; ts: number; value: number | null; quantity: number | null; eventId: string | null }[]> {
  const sql = (tsExpr: string): string => `
    SELECT u.external_id AS "user", s.external_id AS "session", i.external_id AS item, t.name AS type, ${tsExpr} AS ts,
           e.value, e.quantity, e.event_id AS "eventId"
      FROM events e JOIN items i ON i.id = e.item_id JOIN event_types t ON t.id = e.type_id
      LEFT JOIN users u ON u.id = e.user_id LEFT JOIN sessions s ON s.id = e.session_id
     ORDER BY e.ts, i.external_id, t.name`;
  if (store.provider === 'sqlite') return store.db.prepare(sql('e.ts')).all() as never;
  const { rows } = await store.pool.query(sql(`(EXTRACT(EPOCH FROM e.ts) * 1000)::bigint`));
  return rows as never;
}
