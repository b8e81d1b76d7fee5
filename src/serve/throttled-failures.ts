/**
 * Counts failures of a background store operation so that a failing store
 * logs at most one line per interval, with how many failed since the last
 * line (the impression recorder's writes, the attributor's batches).
 */
export class ThrottledFailures {
  private lastLine = -Infinity;
  private since = 0;

  constructor(private readonly everyMs = 10_000) {}

  /** Adds `n` failures; returns the count to put in a log line when one is due (counting starts again), else undefined. */
  add(n = 1): number | undefined {
    this.since += n;
    const now = performance.now();
    if (now - this.lastLine < this.everyMs) return undefined;
    const count = this.since;
    this.lastLine = now;
    this.since = 0;
    return count;
  }
}
