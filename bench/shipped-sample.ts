import { join } from 'node:path';
import { importEvents } from '../src/data/import/import-events.js';
import { DEFAULT_SASREC } from '../src/data/import/sources.js';
import type { Store } from '../src/data/store.js';

/** The benchmark files the repository ships (samples/README.md has their provenance and published results). */
export const SHIPPED_DATASETS = ['amazon-games', 'amazon-beauty'] as const;
export type ShippedDataset = (typeof SHIPPED_DATASETS)[number];

export const shippedSample = (dataset: ShippedDataset): string => join(import.meta.dirname, '..', 'samples', `${dataset}.txt`);

/** The amazon-games sample, the one the import, serve and export benchmarks use. */
export const SHIPPED_SAMPLE = shippedSample('amazon-games');

/** Imports a shipped sample into a migrated store, as `npm run import -- samples/<dataset>.txt` does. */
export async function importShippedSample(store: Store, dataset: ShippedDataset = 'amazon-games'): Promise<void> {
  await importEvents(store, { events: { path: shippedSample(dataset), format: 'sasrec', timeUnit: 'auto', sasrec: DEFAULT_SASREC }, skipBad: false, eventTypes: 'register' });
}
