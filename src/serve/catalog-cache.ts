import type { CatalogItem, ServingReader } from '../data/serving-reader.js';

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

  async reload(): Promise<void> {
    const items = await this.reader.catalog();
    this.byId = new Map(items.map((item) => [item.id, item]));
    this.byExternal = new Map(items.map((item) => [item.externalId, item]));
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
