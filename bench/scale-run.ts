// One size of the scale benchmark, in its own process so its peak memory is
// its own: generate (or reuse) a synthetic log, import it into a fresh SQLite
// store, read the histories, train one epoch with the default sampled
// softmax, and time scoring against the whole catalogue. Prints one JSON line.
//   tsx bench/scale-run.ts --events 1000000 --items 10000 --scratch bench/scratch
import { existsSync, mkdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import * as tf from '@tensorflow/tfjs';
import { importEvents } from '../src/data/import/import-events.js';
import { DEFAULT_SASREC } from '../src/data/import/sources.js';
import { leaveOneOutSplit } from '../src/data/leave-one-out-split.js';
import { migrate } from '../src/data/migrate.js';
import { loadSequences } from '../src/data/sequences.js';
import { openStore } from '../src/data/store.js';
import { selectBackend } from '../src/model/backend.js';
import { MODEL_DEFAULTS } from '../src/model/config.js';
import { ItemScorer } from '../src/model/item-scorer.js';
import { topIndices } from '../src/model/beam-search.js';
import { SasRec } from '../src/model/sasrec.js';
import { Random } from '../src/random.js';
import { DEFAULT_TRAINING, Trainer } from '../src/train/trainer.js';
import { ItemVocabulary } from '../src/model/vocabulary.js';
import { writeSyntheticCsv } from './synthetic-log.js';

const { values } = parseArgs({ options: { events: { type: 'string' }, items: { type: 'string' }, scratch: { type: 'string', default: 'bench/scratch' }, 'max-events-per-user': { type: 'string', default: '200' } } });
const events = Number(values.events);
const items = Number(values.items);
const users = Math.max(1, Math.round(events / 50));
const rss = (): number => Math.round(process.resourceUsage().maxRSS / 1024);
const log = (line: string): void => void process.stderr.write(`[${events} events] ${line}\n`);

mkdirSync(values.scratch!, { recursive: true });
const csv = join(values.scratch!, `scale-${events}-${items}.csv`);
if (!existsSync(csv)) {
  log('generating the log');
  await writeSyntheticCsv(csv, { events, users, items, seed: 7 });
}
const file = join(values.scratch!, `scale-${events}.db`);
for (const suffix of ['', '-wal', '-shm']) rmSync(file + suffix, { force: true });
const backend = await selectBackend('auto');
const store = openStore(`file:${file}`);
await migrate(store);

let t = performance.now();
const report = await importEvents(store, { events: { path: csv, format: 'csv', timeUnit: 'auto', sasrec: DEFAULT_SASREC }, skipBad: false, eventTypes: 'register' });
const importSeconds = (performance.now() - t) / 1000;
const importRss = rss();
log(`imported ${report.events?.inserted} events in ${importSeconds.toFixed(1)} s`);

t = performance.now();
const sequences = await loadSequences(store, { maxPerOwner: Number(values['max-events-per-user']) });
const loadSeconds = (performance.now() - t) / 1000;
await store.close();
const vocabulary = ItemVocabulary.fromItems(sequences.items);
const data = { offsets: sequences.offsets, items: vocabulary.encode(sequences.items), types: sequences.types };
const split = leaveOneOutSplit(sequences.offsets);
const model = new SasRec({ ...MODEL_DEFAULTS, numItems: vocabulary.size, numEventTypes: 3 });
const trainer = new Trainer(model, data, split, { ...DEFAULT_TRAINING });
log(`training one epoch on ${backend.name}: ${sequences.owners.length} users, ${vocabulary.size} items`);
const epoch = trainer.trainEpoch();
const trainRss = rss();
log(`epoch ${epoch.seconds.toFixed(1)} s`);

// Scoring the whole catalogue for one user, as the API does on a cache miss: matvec, normaliser, top 10.
const table = model.outputTable().dataSync() as Float32Array;
const scorer = new ItemScorer(table, vocabulary.size + 1, MODEL_DEFAULTS.dim);
const random = new Random(3);
const times: number[] = [];
for (let i = 0; i < 2_000; i++) {
  const query = Float32Array.from({ length: MODEL_DEFAULTS.dim }, () => random.next() - 0.5);
  const started = performance.now();
  const scores = scorer.scores(query);
  scorer.logSumExpOfLast();
  topIndices(scores, 10, (j) => j !== 0);
  if (i >= 200) times.push(performance.now() - started);
}
times.sort((a, b) => a - b);
const pct = (p: number): number => Math.round(times[Math.min(times.length - 1, Math.floor(p * times.length))]! * 1000) / 1000;
tf.disposeVariables();
process.stdout.write(
  `${JSON.stringify({
    events,
    items,
    users,
    backend: backend.name,
    import_seconds: Math.round(importSeconds * 10) / 10,
    import_events_per_s: Math.round(events / importSeconds),
    load_sequences_seconds: Math.round(loadSeconds * 100) / 100,
    train_users: sequences.owners.length,
    train_items: vocabulary.size,
    epoch_seconds: Math.round(epoch.seconds * 10) / 10,
    epoch_steps: epoch.steps,
    peak_rss_mb_after_import: importRss,
    peak_rss_mb_after_epoch: trainRss,
    scoring_ms: { p50: pct(0.5), p99: pct(0.99) },
  })}\n`,
);
