import type { IdCache, IdCaches } from './import/import-events.js';
import type { SessionRef } from './import/import-target.js';

/**
 * External → internal ids of users, items and sessions that are known to be
 * committed, kept across ingestion requests so a returning shopper or item
 * costs no lookup (two statements per id before: an INSERT … ON CONFLICT DO
 * NOTHING, then a SELECT; ~0.3 ms of a 100-event batch on SQLite).
 *
 * Sound because attnrec never deletes users, items or sessions nor changes
 * their ids (items are deactivated, not removed), and a session's user, once
 * set, never changes (a cached session without one is looked up again when
 * an event brings a user). Ids resolved inside a transaction live in that
 * transaction's own layer and reach the shared cache only after it commits:
 * a rolled-back transaction leaves no id behind that would not exist.
 */
export class CommittedIds {
  readonly users = new BoundedMap<number>(MAX_ENTRIES);
  readonly items = new BoundedMap<number>(MAX_ENTRIES);
  readonly sessions = new BoundedMap<SessionRef>(MAX_ENTRIES);

  /** Caches for one transaction: reads see committed ids, writes stay in the transaction until `commit`. */
  transaction(): IdCaches & { commit(): void } {
    const users = new Layer(this.users);
    const items = new Layer(this.items);
    const sessions = new Layer(this.sessions);
    return {
      users,
      items,
      sessions,
      commit: () => {
        users.commit();
        items.commit();
        sessions.commit();
      },
    };
  }
}

/** Per kind of id: 200,000 entries (~20 MB at most); the oldest entries make room. */
const MAX_ENTRIES = 200_000;

/** A Map of at most `max` entries; the oldest tenth makes room when it is full. */
export class BoundedMap<V> {
  private readonly map = new Map<string, V>();
  constructor(private readonly max: number) {}

  get(key: string): V | undefined {
    return this.map.get(key);
  }

  set(key: string, value: V): void {
    this.map.set(key, value);
    if (this.map.size > this.max) {
      // Insertion order: drop the oldest tenth at once rather than one per insert.
      let drop = Math.ceil(this.max / 10);
      for (const k of this.map.keys()) {
        if (drop-- === 0) break;
        this.map.delete(k);
      }
    }
  }

  get size(): number {
    return this.map.size;
  }
}

class Layer<V> implements IdCache<V> {
  private readonly fresh = new Map<string, V>();
  constructor(private readonly committed: BoundedMap<V>) {}

  get(key: string): V | undefined {
    return this.fresh.get(key) ?? this.committed.get(key);
  }

  set(key: string, value: V): void {
    this.fresh.set(key, value);
  }

  commit(): void {
    for (const [key, value] of this.fresh) this.committed.set(key, value);
    this.fresh.clear();
  }
}
