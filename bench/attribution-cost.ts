/**
 * What attribution costs, on each store: a shop's log where shoppers act on
 * what they were shown. 20,000 impressions of 10 items for 5,000 users, then
 * 160,000 events in batches of 100 (as POST /v1/events stores them), half of
 * them on an item shown to their user shortly before, a fifth of those naming
 * the response's recommendationId; then the attributor's batches
 * (src/data/attributions.ts: 250 events on SQLite, 1,000 on PostgreSQL) until
 * every event is read. Reports events/s for ingestion and for attribution,
 * and on SQLite the event loop's CPU during attribution (the batches run on
 * the writer thread). PostgreSQL runs on a throwaway server when its binaries
 * are installed (skipped otherwise).
 *
 *   npx tsx bench/attribution-cost.ts [--events 160000] [--no-write]
 *
 * Prints one JSON document and writes it to bench/results/attribution-cost-<timestamp>.json.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { v7 as uuidV7 } from 'uuid';
import { ROOT } from '../src/cli/processes.js';
import { findPostgresBin, startThrowawayPostgres, throwawaySettings } from '../src/cli/throwaway-postgres.js';
import { attributeBatch, attributionMark } from '../src/data/attributions.js';
import type { EventRow } from '../src/data/import/event-row.js';
import { writeImpressions, type ImpressionRow } from '../src/data/impressions.js';
import { ingestEvents } from '../src/data/ingest-events.js';
import { migrate } from '../src/data/migrate.js';
import { openStore, type Store } from '../src/data/store.js';
import { Random } from '../src/random.js';
import { machineFacts, writeBenchResult } from './machine.js';
import { statCpuSeconds } from './thread-cpu.js';

const { values } = parseArgs({ options: { events: { type: 'string', default: '160000' }, 'no-write': { type: 'boolean', default: false } } });
const EVENTS = Number(values.events);
if (!Number.isInteger(EVENTS) || EVENTS < 1_000) throw new Error(`--events must be an integer of at least 1000; got '${values.events}'`);
const USERS = 5_000;
const ITEMS = 2_000;
const IMPRESSIONS = 20_000;
const WINDOW_MS = 86_400_000;
const log = (line: string): void => void process.stderr.write(`${line}\n`);

/** CPU time (ms) of this process's main thread. */
function mainThreadCpuMs(): number {
  return statCpuSeconds(`/proc/self/task/${process.pid}/stat`) * 1_000;
}
const cpuMs = (): number => {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1000;
};

async function measure(store: Store): Promise<Record<string, number>> {
  await migrate(store);
  const random = new Random(7);
  const start = Date.now() - 3_600_000;
  // The catalogue and the users, through the ingestion path (one view each).
  const seed: EventRow[] = [];
  for (let i = 0; i < ITEMS; i++) seed.push({ line: i + 1, user: `user-${i % USERS}`, session: null, item: `sku-${i}`, type: 'view', ts: start - 1_000, value: null, quantity: null, eventId: null, recommendationId: null });
  for (let i = 0; i < seed.length; i += 500) await ingestEvents(store, seed.slice(i, i + 500));
  const itemIds = new Map<string, number>();
  for (const item of await store.prisma.item.findMany({ select: { id: true, externalId: true } })) itemIds.set(item.externalId, item.id);
  // Impressions: 10 random items for a random user, spread over the hour before the events.
  const shown: { id: string; user: string; items: string[]; ts: number }[] = [];
  const rows: ImpressionRow[] = [];
  for (let i = 0; i < IMPRESSIONS; i++) {
    const ts = start + Math.floor((i / IMPRESSIONS) * 1_800_000);
    const id = uuidV7({ msecs: ts });
    const user = `user-${random.int(USERS)}`;
    const items = Array.from({ length: 10 }, () => `sku-${random.int(ITEMS)}`);
    shown.push({ id, user, items, ts });
    rows.push({
      id,
      ts,
      route: 'user_recommendations',
      strategy: 'model',
      modelVersion: 1,
      experimentId: null,
      variant: null,
      userId: user,
      sessionId: null,
      itemIds: Int32Array.from(items, (x) => itemIds.get(x)!),
      probabilities: Float64Array.from(items, (_, k) => 0.1 / (k + 1)),
      scores: Float64Array.from(items, (_, k) => 5 - k),
    });
  }
  for (let i = 0; i < rows.length; i += 500) await writeImpressions(store, rows.slice(i, i + 500));
  // Events: half on an item shown to their user (a fifth of those naming the response), half on anything.
  const events: EventRow[] = [];
  for (let i = 0; i < EVENTS; i++) {
    const ts = start + 1_800_000 + Math.floor((i / EVENTS) * 1_700_000);
    if (random.next() < 0.5) {
      const s = shown[random.int(shown.length)]!;
      events.push({ line: i + 1, user: s.user, session: null, item: s.items[random.int(10)]!, type: random.next() < 0.8 ? 'view' : 'purchase', ts, value: null, quantity: null, eventId: null, recommendationId: random.next() < 0.2 ? s.id : null });
    } else {
      events.push({ line: i + 1, user: `user-${random.int(USERS)}`, session: null, item: `sku-${random.int(ITEMS)}`, type: 'view', ts, value: null, quantity: null, eventId: null, recommendationId: null });
    }
  }
  let t = performance.now();
  for (let i = 0; i < events.length; i += 100) await ingestEvents(store, events.slice(i, i + 100));
  const ingestSeconds = (performance.now() - t) / 1000;
  // The attributor's batches, back to back, up to the newest event (nothing else writes: settled).
  const mark = await attributionMark(store);
  const limit = store.provider === 'sqlite' ? 250 : 1_000;
  const counts = { read: 0, explicit: 0, rule: 0, unattributed: 0 };
  const [main0, all0] = [mainThreadCpuMs(), cpuMs()];
  t = performance.now();
  let longest = 0;
  for (;;) {
    const started = performance.now();
    const batch = await attributeBatch(store, mark.eventKey, { windowMs: WINDOW_MS, limit });
    longest = Math.max(longest, performance.now() - started);
    if (batch === 'busy') throw new Error('the cursor is locked by someone else');
    counts.read += batch.read;
    counts.explicit += batch.attributed.explicit;
    counts.rule += batch.attributed.rule;
    counts.unattributed += Object.values(batch.unattributed).reduce((a, b) => a + b, 0);
    if (batch.cursor >= mark.eventKey || batch.read === 0) break;
  }
  const attributeSeconds = (performance.now() - t) / 1000;
  const [main1, all1] = [mainThreadCpuMs(), cpuMs()];
  const round = (x: number, digits = 1): number => Math.round(x * 10 ** digits) / 10 ** digits;
  return {
    events: counts.read,
    attributed_explicit: counts.explicit,
    attributed_rule: counts.rule,
    unattributed: counts.unattributed,
    ingest_events_per_s: Math.round(EVENTS / ingestSeconds),
    attribute_events_per_s: Math.round(counts.read / attributeSeconds),
    attribute_batch_longest_ms: round(longest),
    attribute_us_per_event_process_cpu: round(((all1 - all0) / counts.read) * 1000),
    attribute_us_per_event_event_loop_cpu: round(((main1 - main0) / counts.read) * 1000),
  };
}

const started = new Date();
const results: Record<string, unknown> = {};
const dir = mkdtempSync(join(tmpdir(), 'attnrec-attribution-cost-'));
try {
  log('SQLite: seeding, ingesting and attributing');
  const sqlite = openStore(`file:${join(dir, 'attribution.db')}`);
  try {
    results.sqlite = await measure(sqlite);
  } finally {
    await sqlite.close();
  }
  if (findPostgresBin()) {
    log('PostgreSQL (a throwaway server): seeding, ingesting and attributing');
    // Durable settings (fsync, synchronous commit): the figures are what a real server would do.
    const pg = await startThrowawayPostgres({ durable: true });
    try {
      const store = openStore(pg.url);
      try {
        results.postgresql = await measure(store);
      } finally {
        await store.close();
      }
    } finally {
      pg.stop();
    }
  } else {
    results.postgresql = 'skipped: no PostgreSQL binaries';
  }
} finally {
  rmSync(dir, { recursive: true, force: true });
}
const body = {
  benchmark: 'attribution-cost',
  started: started.toISOString(),
  machine: machineFacts(),
  method: `${IMPRESSIONS} impressions of 10 items for ${USERS} users, then ${EVENTS} events in batches of 100 (half on an item shown to their user, a fifth of those naming the recommendationId), then the attributor's batches back to back`,
  postgresql_settings: throwawaySettings({ durable: true }),
  ...results,
};
const text = JSON.stringify(body, null, 2);
process.stdout.write(`${text}\n`);
if (!values['no-write']) log(`wrote ${writeBenchResult(join(ROOT, 'bench', 'results'), 'attribution-cost', started, text)}`);
