import { join } from 'node:path';
import { importEvents } from '../src/data/import/import-events.js';
import { DEFAULT_SASREC } from '../src/data/import/sources.js';
import type { Store } from '../src/data/store.js';

/** The amazon-games sample the repository ships (samples/README.md has its provenance). */
export const SHIPPED_SAMPLE = join(import.meta.dirname, '..', 'samples', 'amazon-games.txt');

/** Imports the shipped sample into a migrated store, as `npm run import -- samples/amazon-games.txt` does. */
export async function importShippedSample(store: Store): Promise<void> {
  await importEvents(store, { events: { path: SHIPPED_SAMPLE, format: 'sasrec', timeUnit: 'auto', sasrec: DEFAULT_SASREC }, skipBad: false, eventTypes: 'register' });
}
