/**
 * SQLite's own cost of an ingested event, with nothing of attnrec around it: what the SQLite writer
 * thread's CPU an event (bench/cpu-breakdown.ts) is set against. On a fresh copy of the serve benchmark's
 * store, better-sqlite3 alone inserts events with the writer's statement (SQLITE_EVENT_INSERT,
 * src/data/import/sqlite-target.ts): uniform users and items of the store (src/random.ts, seeded), a fresh
 * event id each, `ts` now, the ids from in-memory arrays (no look-ups), `groups` events a transaction. The
 * connection is set up as the writer thread's (configureWriterConnection, with the settings the server
 * derives from its main connection: writerConnectionSettings; `--cache-mib` overrides its page cache); a
 * `wal_checkpoint(TRUNCATE)` runs every `--checkpoint-every` events and its CPU is reported apart (the server's checkpoints run on their own thread). Each group size
 * in turn, `--events` events each after a warm-up; CPU from process.cpuUsage (this process has one
 * thread doing the work), wall time beside it.
 *
 *   npm run bench -- serve --quick          # once, to build bench/scratch/serve-bench.db
 *   npx tsx bench/sqlite-event-floor.ts [--events 200000] [--groups 100,200,500,1000,2000] [--cache-mib N] [--checkpoint-every 20000] [--no-write]
 *
 * Prints one JSON document and writes it to bench/results/sqlite-event-floor-<timestamp>.json.
 */
import Database from 'better-sqlite3';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { integerFlag } from '../src/cli/job.js';
import { ROOT } from '../src/cli/processes.js';
import { SQLITE_EVENT_INSERT } from '../src/data/import/sqlite-target.js';
import { configureWriterConnection } from '../src/data/sqlite-writer-connection.js';
import { writerConnectionSettings } from '../src/data/sqlite-writer.js';
import { openSqlite } from '../src/data/store.js';
import { Random } from '../src/random.js';
import { machineFacts, writeBenchResult } from './machine.js';
import { copyScratchStore } from './warm-server.js';

const { values } = parseArgs({
  options: {
    events: { type: 'string', default: '200000' },
    groups: { type: 'string', default: '100,200,500,1000,2000' },
    'cache-mib': { type: 'string' },
    'checkpoint-every': { type: 'string', default: '20000' },
    'no-write': { type: 'boolean', default: false },
  },
});
const events = integerFlag('events', values.events, 1_000, 10_000_000);
const groups = values.groups.split(',').map((g) => integerFlag('groups', g.trim(), 1, 100_000));
const cacheMib = values['cache-mib'] === undefined ? undefined : integerFlag('cache-mib', values['cache-mib'], 1, 4_096);
const checkpointEvery = integerFlag('checkpoint-every', values['checkpoint-every'], 1_000, 10_000_000);
const WARM_UP_EVENTS = 40_000;

const started = new Date();
const file = await copyScratchStore('sqlite-event-floor');
// As the server: its main connection (the store's pragmas), and the writer thread's connection set up from it.
const main = openSqlite(file);
const users = main.prepare('SELECT id FROM users').pluck().all() as number[];
const items = main.prepare('SELECT id FROM items').pluck().all() as number[];
const view = main.prepare("SELECT id FROM event_types WHERE name = 'view'").pluck().get() as number | undefined;
if (users.length === 0 || items.length === 0 || view === undefined) throw new Error(`${file} holds no users, items or 'view' type: build it with npm run bench -- serve --quick`);
const settings = { ...writerConnectionSettings(main), ...(cacheMib !== undefined && { cacheSize: -cacheMib * 1_024 }) };
main.close();
const db = new Database(file, { fileMustExist: true });
configureWriterConnection(db, settings);
const insert = db.prepare(SQLITE_EVENT_INSERT);

const random = new Random(7);
const tag = started.getTime().toString(36);
let sequence = 0;
const group = db.transaction((size: number) => {
  const now = Date.now();
  for (let i = 0; i < size; i++) insert.run(users[random.int(users.length)], null, items[random.int(items.length)], view, now, null, null, `floor-${tag}-${sequence++}`, null);
});
const cpuMs = (from: NodeJS.CpuUsage): number => {
  const { user, system } = process.cpuUsage(from);
  return (user + system) / 1_000;
};
let checkpointMs = 0;
const checkpoint = (): void => {
  const from = process.cpuUsage();
  db.pragma('wal_checkpoint(TRUNCATE)');
  checkpointMs += cpuMs(from);
};

/** `count` events in transactions of `size`, a checkpoint every checkpointEvery events. */
function run(size: number, count: number) {
  checkpoint();
  checkpointMs = 0;
  const [from, t0] = [process.cpuUsage(), performance.now()];
  let sinceCheckpoint = 0;
  for (let done = 0; done < count; done += size) {
    group(size);
    sinceCheckpoint += size;
    if (sinceCheckpoint >= checkpointEvery) {
      checkpoint();
      sinceCheckpoint = 0;
    }
  }
  const [cpu, wall] = [cpuMs(from), performance.now() - t0];
  const round = (x: number): number => Math.round(x * 100) / 100;
  return {
    events_a_transaction: size,
    events: count,
    inserts_and_commits_cpu_us_per_event: round(((cpu - checkpointMs) * 1_000) / count),
    checkpoints_cpu_us_per_event: round((checkpointMs * 1_000) / count),
    wall_us_per_event: round((wall * 1_000) / count),
  };
}

run(groups[0]!, WARM_UP_EVENTS);
const results = groups.map((size) => {
  const result = run(size, Math.ceil(events / size) * size);
  process.stderr.write(`${JSON.stringify(result)}\n`);
  return result;
});
db.close();
const body = {
  benchmark: 'sqlite-event-floor',
  started: started.toISOString(),
  machine: machineFacts(),
  method: `a fresh copy of bench/scratch/serve-bench.db (${users.length} users, ${items.length} items); better-sqlite3 alone, the import target's event INSERT (ON CONFLICT DO NOTHING), uniform users and items, a fresh event id each, ts now, ids from memory; the writer thread's connection (synchronous=${settings.synchronous}, cache_size=${settings.cacheSize}, foreign keys on, no automatic checkpoints), wal_checkpoint(TRUNCATE) every ${checkpointEvery} events (CPU apart); ${WARM_UP_EVENTS} events of warm-up, then ${events} events per transaction size in turn; CPU from process.cpuUsage`,
  results,
};
const text = JSON.stringify(body, null, 2);
process.stdout.write(`${text}\n`);
if (!values['no-write']) process.stderr.write(`wrote ${writeBenchResult(join(ROOT, 'bench', 'results'), 'sqlite-event-floor', started, text)}\n`);
