import { setImmediate } from 'node:timers/promises';
import type { CatalogItem, ServingReader } from '../data/serving-reader.js';

/** Items read per page of a reload. */
const PAGE_ITEMS = 1_000;

/**
 * The item catalogue in memory: every recommendation needs titles, categories
 * and the active flag of its items, and a shop's catalogue (tens or hundreds
 * of thousands of items) fits easily. Reloaded after catalogue writes through
 * this API and when a model is activated; `generation` changes on each reload
 * so per-model views built from it know when to rebuild.
 */
export class CatalogCache {
  private byId = new Map<number, CatalogItem>();
  private byExternal = new Map<string, CatalogItem>();
  private generation_ = 0;

  constructor(private readonly reader: ServingReader) {}

  /**
   * Reads the catalogue again, a page at a time with the event loop free
   * between pages, and switches to it at once when the last page is in. In one
   * piece, the benchmark's 23,715 items held the event loop for 65-150 ms
   * (timed on the serve benchmark's store, five reloads; reading was 40 ms of it), which was every live
   * request's latency at an activation; in pages the longest stall was 10-22 ms (monitorEventLoopDelay over five reloads, GC included).
   * Lookups see the previous catalogue until the switch.
   */
  async reload(): Promise<void> {
    const byId = new Map<number, CatalogItem>();
    const byExternal = new Map<string, CatalogItem>();
    for (let after = 0; ; ) {
      const page = await this.reader.catalog(after, PAGE_ITEMS);
      for (const item of page) {
        byId.set(item.id, item);
        byExternal.set(item.externalId, item);
      }
      if (page.length < PAGE_ITEMS) break;
      after = page[page.length - 1]!.id;
      await setImmediate();
    }
    this.byId = byId;
    this.byExternal = byExternal;
    this.generation_++;
  }

  get generation(): number {
    return this.generation_;
  }

  get size(): number {
    return this.byId.size;
  }

  /** Every item (in id order). */
  items(): CatalogItem[] {
    return [...this.byId.values()];
  }

  byInternalId(id: number): CatalogItem | undefined {
    return this.byId.get(id);
  }

  byExternalId(externalId: string): CatalogItem | undefined {
    return this.byExternal.get(externalId);
  }
}
