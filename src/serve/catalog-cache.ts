import { setImmediate } from 'node:timers/promises';
import { compileBoosts, compileFilter, compileGroup, PropertyTypes, type ItemBoosts, type ItemFilter, type ItemGroup } from '../data/item-rules/compile.js';
import type { CatalogItem, CatalogState, ServingReader } from '../data/serving-reader.js';
import { LruCache } from './lru-cache.js';

/** Items read per page of a reload. */
const PAGE_ITEMS = 1_000;
/** Compiled rules kept per catalogue generation (shops send a handful of distinct rules, over and over). */
const COMPILED_RULES = 256;

/**
 * The item catalogue in memory: every recommendation needs titles, categories
 * and the active flag of its items, and a shop's catalogue (tens or hundreds
 * of thousands of items) fits easily. Reloaded after catalogue writes through
 * this API and, when a model is activated, if the store's items changed
 * (refresh); `generation` changes on each reload
 * so per-model views built from it know when to rebuild.
 */
export class CatalogCache {
  private byId = new Map<number, CatalogItem>();
  private byExternal = new Map<string, CatalogItem>();
  private list: readonly CatalogItem[] = [];
  private generation_ = 0;
  private changedAt = 0;
  private types = new PropertyTypes();
  private filters = new LruCache<string, ItemFilter>(COMPILED_RULES);
  private boostRules = new LruCache<string, ItemBoosts>(COMPILED_RULES);

  /** Reloads and additions run one after another: an addition never lands in maps a reload already read past and is about to replace. */
  private tail: Promise<void> = Promise.resolve();

  constructor(private readonly reader: ServingReader) {}

  private serially(work: () => Promise<void>): Promise<void> {
    const run = this.tail.then(work);
    this.tail = run.catch(() => {});
    return run;
  }

  /**
   * Reads the catalogue again, a page at a time with the event loop free
   * between pages, and switches to it at once when the last page is in. In one
   * piece, the benchmark's 23,715 items held the event loop for 65-150 ms
   * (timed on the serve benchmark's store, five reloads; reading was 40 ms of it), which was every live
   * request's latency at an activation; in pages the longest stall was 10-22 ms (monitorEventLoopDelay over five reloads, GC included).
   * Lookups see the previous catalogue until the switch.
   */
  reload(): Promise<void> {
    // A reload queued behind another and not started yet will read everything written before it starts:
    // callers in the meantime (concurrent catalogue writes) share it rather than queue one each.
    if (this.queuedReload) return this.queuedReload;
    const queued = this.serially(() => {
      this.queuedReload = undefined;
      return this.readAll();
    });
    this.queuedReload = queued;
    return queued;
  }

  private queuedReload: Promise<void> | undefined;

  /**
   * Reads the catalogue again unless the store's items are the ones held: as
   * many items, and no change to a stored item (update, delete) counted since
   * the last reload began (ServingReader.catalogState). An activation does
   * this: a version may know items imported since the catalogue was read, but
   * most activations find the catalogue as it was, and a whole reload held the
   * event loop for ~65 ms in pieces of up to 11-14 ms (23,715 items on a
   * half-speed machine, bench/catalogue-reload.ts; refresh: 0.12 ms) just when
   * a new version's first seconds are busiest (docs/serving-performance.md, "A
   * catalogue read only when it changed"). Resolves with whether it reloaded.
   */
  refresh(): Promise<boolean> {
    if (this.queuedReload) return this.queuedReload.then(() => true);
    let reloaded = false;
    return this.serially(async () => {
      const state = await this.reader.catalogState();
      if (this.loadedChanges === state.changes && state.items === this.byId.size) return;
      reloaded = true;
      await this.readAll(state);
    }).then(() => reloaded);
  }

  /** The store's count of item changes when the last reload began (undefined before the first). */
  private loadedChanges: number | undefined;

  /**
   * Adds the items among `externalIds` that this catalogue does not hold yet
   * and the store does (an event batch that named new items created them), by
   * reading those rows alone. Before, such a batch reloaded the whole
   * catalogue: with 5 new items in every batch of 100, ingestion on the
   * benchmark's store (23,715 items) got 1,110-1,130 events/s, against
   * 17,540-18,520 since (`npx tsx bench/ingestion-mix.ts --new-items 5`,
   * docs/serving-performance.md, "Items that events create"). Resolves once
   * they are in.
   */
  addItems(externalIds: Iterable<string>): Promise<void> {
    const wanted = [...new Set(externalIds)].filter((id) => !this.byExternal.has(id));
    if (wanted.length === 0) return Promise.resolve();
    return this.serially(async () => {
      const missing = wanted.filter((id) => !this.byExternal.has(id));
      if (missing.length === 0) return;
      const added = (await this.reader.catalogItems(missing)).filter((item) => !this.byId.has(item.id));
      if (added.length === 0) return;
      for (const item of added) {
        this.byId.set(item.id, item);
        this.byExternal.set(item.externalId, item);
      }
      this.list = mergeById(this.list, added);
      this.generation_++;
      if (added.some((item) => item.properties)) {
        // New property types: rules compile differently, so this counts as a change of the items, not an addition alone.
        this.types = PropertyTypes.of(this.list);
        this.filters = new LruCache(COMPILED_RULES);
        this.boostRules = new LruCache(COMPILED_RULES);
        this.changedAt = this.generation_;
      }
    });
  }

  /** Reads every item, a page at a time; `state`: the catalogue's state read just before (else read here first). */
  private async readAll(state?: CatalogState): Promise<void> {
    // Read before the first page: a change during the pages leaves the count past this, so the next refresh reads again.
    const { changes } = state ?? (await this.reader.catalogState());
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
    this.changedAt = this.generation_;
    this.loadedChanges = changes;
  }

  get generation(): number {
    return this.generation_;
  }

  /**
   * The generation of the last change that may have changed items already
   * held (a reload; an addition of items with properties). The generations
   * after it only added items: what was built from an earlier one of them
   * still describes every item it held.
   */
  get changedGeneration(): number {
    return this.changedAt;
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

/** Two lists of items in id order, merged (`added` is short: the items one batch created). */
function mergeById(list: readonly CatalogItem[], added: readonly CatalogItem[]): CatalogItem[] {
  const sorted = [...added].sort((a, b) => a.id - b.id);
  // Usually every added id is above the list's last: a plain append.
  if (list.length === 0 || sorted[0]!.id > list[list.length - 1]!.id) return [...list, ...sorted];
  const merged: CatalogItem[] = [];
  let j = 0;
  for (const item of list) {
    while (j < sorted.length && sorted[j]!.id < item.id) merged.push(sorted[j++]!);
    merged.push(item);
  }
  while (j < sorted.length) merged.push(sorted[j++]!);
  return merged;
}
