import { setImmediate } from 'node:timers/promises';
import { compileBoosts, compileFilter, compileGroup, PropertyTypes, type ItemBoosts, type ItemFilter, type ItemGroup } from '../data/item-rules/compile.js';
import type { CatalogItem, ServingReader } from '../data/serving-reader.js';
import { LruCache } from './lru-cache.js';

/** Items read per page of a reload. */
const PAGE_ITEMS = 1_000;
/** Compiled rules kept per catalogue generation (shops send a handful of distinct rules, over and over). */
const COMPILED_RULES = 256;

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
  private list: readonly CatalogItem[] = [];
  private generation_ = 0;
  private types = new PropertyTypes();
  private filters = new LruCache<string, ItemFilter>(COMPILED_RULES);
  private boostRules = new LruCache<string, ItemBoosts>(COMPILED_RULES);

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
    this.list = [...byId.values()];
    // Rules are type-checked against what the catalogue holds: compiled again for a new one.
    this.types = PropertyTypes.of(byId.values());
    this.filters = new LruCache(COMPILED_RULES);
    this.boostRules = new LruCache(COMPILED_RULES);
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
    return [...this.list];
  }

  /** The i-th item in id order (0 ≤ i < size): for drawing items at random without copying the catalogue. */
  itemAt(i: number): CatalogItem | undefined {
    return this.list[i];
  }

  byInternalId(id: number): CatalogItem | undefined {
    return this.byId.get(id);
  }

  byExternalId(externalId: string): CatalogItem | undefined {
    return this.byExternal.get(externalId);
  }

  /** A filter rule, compiled and checked against this catalogue (throws RuleError). */
  filter(text: string): ItemFilter {
    let compiled = this.filters.get(text);
    if (!compiled) this.filters.set(text, (compiled = compileFilter(text, this.types)));
    return compiled;
  }

  /** What a diversity cap groups by: a built-in or property name (throws RuleError). */
  group(text: string): ItemGroup {
    return compileGroup(text, this.types);
  }

  /** Boost rules, compiled and checked against this catalogue (throws RuleError). */
  boosts(text: string): ItemBoosts {
    let compiled = this.boostRules.get(text);
    if (!compiled) this.boostRules.set(text, (compiled = compileBoosts(text, this.types)));
    return compiled;
  }
}
