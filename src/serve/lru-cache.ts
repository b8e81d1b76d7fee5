import { LRUCache } from 'lru-cache';

/**
 * A size-bounded map that forgets the least recently used entry first, with
 * an optional time to live (from the last set); capacity 0 keeps nothing.
 * A thin face on the `lru-cache` package, which keeps recency in linked
 * index arrays instead of deleting and re-inserting every hit in a Map, as
 * the hand-written class it replaces did. Measured with the serve
 * benchmark's store (31,013 cached users, 250 req/s of cached GETs, 15 s,
 * node --trace-gc): no gain that stands out of the noise (p99 19.7 ms
 * before, 27.2 after; the event loop's scavenges took 11-19 ms before and
 * 4-17 ms after, each promoting ~3 MB); kept as the maintained library.
 */
export class LruCache<K extends {}, V extends {}> {
  private readonly entries: LRUCache<K, V> | undefined;

  /**
   * now: the clock of the time to live, milliseconds (tests pass their own); onRemove: called with
   * each value that leaves (evicted, expired, deleted, cleared or replaced by a set).
   */
  constructor(capacity: number, ttlMs = Infinity, now: () => number = () => performance.now(), onRemove?: (value: V) => void) {
    this.entries =
      capacity > 0
        ? new LRUCache<K, V>({
            max: capacity,
            perf: { now },
            ttlResolution: 0,
            ...(Number.isFinite(ttlMs) && { ttl: Math.max(1, Math.round(ttlMs)) }),
            ...(onRemove && { dispose: (value: V) => onRemove(value) }),
          })
        : undefined;
  }

  get(key: K): V | undefined {
    return this.entries?.get(key);
  }

  /** The value without marking it used; undefined if absent or expired. */
  peek(key: K): V | undefined {
    return this.entries?.peek(key);
  }

  set(key: K, value: V): void {
    this.entries?.set(key, value);
  }

  delete(key: K): void {
    this.entries?.delete(key);
  }

  clear(): void {
    this.entries?.clear();
  }

  get size(): number {
    return this.entries?.size ?? 0;
  }
}
