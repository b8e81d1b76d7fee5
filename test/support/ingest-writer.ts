// One writer process for the concurrency test: opens its own connection to
// the store and ingests `batches` batches of 100 events through the API's
// write path; prints {"stored", "duplicates"} as JSON.
//   tsx test/support/ingest-writer.ts <database-url> <writer> <per-writer> <distinct>
import { ingestEvents } from '../../src/data/ingest-events.js';
import type { EventRow } from '../../src/data/import/event-row.js';
import { openStore } from '../../src/data/store.js';

const [url, writerText, perWriterText, distinctText] = process.argv.slice(2);
const writer = Number(writerText);
const perWriter = Number(perWriterText);
const distinct = Number(distinctText);
const store = openStore(url);
const totals = { stored: 0, duplicates: 0 };
try {
  for (let from = 0; from < perWriter; from += 100) {
    const rows: EventRow[] = Array.from({ length: 100 }, (_, j) => {
      const n = (writer * perWriter + from + j) % distinct;
      return { line: j + 1, user: `process-user-${n % 500}`, session: null, item: `sku-${n % 12}`, type: 'view', ts: 1_900_000_000_000 + n, value: null, quantity: null, eventId: `process-${n}`, recommendationId: null };
    });
    const result = await ingestEvents(store, rows);
    totals.stored += result.stored;
    totals.duplicates += result.duplicates;
  }
} finally {
  await store.close();
}
process.stdout.write(`${JSON.stringify(totals)}\n`);
