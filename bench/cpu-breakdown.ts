/**
 * Where the server's CPU goes, thread by thread, for the two loads that scenario (e) puts side by side:
 *  - ingestion alone: batches of INGEST_BATCH events over INGEST_CONNECTIONS connections, back to back
 *    (closed loop), CPU per stored event;
 *  - active shoppers alone at a fixed rate (an event, then that user's recommendations; open loop over
 *    OPEN_LOOP_CONNECTIONS connections), CPU per pair.
 * Each per thread (bench/thread-cpu.ts: the event loop, attnrec-live-<n>, attnrec-writer, attnrec-reader,
 * attnrec-wal, and `node` for V8's and libuv's own threads) and the load generator's own, so the CPU budget
 * of (e) (bench/ingestion-budget.ts) can be read part by part. Each run starts a fresh server on a copy of
 * the serve benchmark's store (run `npm run bench -- serve` once first; with --members 1, `npm run bench --
 * serve --members 1`, whose store holds one-member versions), warms it for 3 s with the same load, then
 * measures; the two loads alternate round by round.
 *
 *   npx tsx bench/cpu-breakdown.ts [--seconds 12] [--rounds 3] [--rate 500] [--workers 2] [--members 2] [-- <server flags>]
 *
 * Prints one JSON line per run: the load, events/s or pairs/s, the shoppers' GET p99, and µs of CPU per
 * event or pair by thread, with the server's total and the load generator's.
 */
import { parseArgs } from 'node:util';
import { runLoad, type LoadRequest } from './load-generator.js';
import { INGEST_BATCH, INGEST_CONNECTIONS, OPEN_LOOP_CONNECTIONS, servedShapeSuffix } from './serve-bench.js';
import { readHistories, Workloads, type Histories } from './serve-workloads.js';
import { threadCpu, threadCpuMicrosPer } from './thread-cpu.js';
import { SCRATCH_SERVER_KEYS, startScratchServer } from './warm-server.js';

const { values, positionals } = parseArgs({
  options: { seconds: { type: 'string', default: '12' }, rounds: { type: 'string', default: '3' }, rate: { type: 'string', default: '500' }, workers: { type: 'string', default: '2' }, members: { type: 'string', default: '2' } },
  allowPositionals: true,
});
const positive = (name: string, text: string, min: number): number => {
  const n = Number(text);
  if (!Number.isFinite(n) || n < min) throw new Error(`--${name} must be a number ≥ ${min}; got '${text}'`);
  return n;
};
const seconds = positive('seconds', values.seconds, 2);
const rounds = Math.floor(positive('rounds', values.rounds, 1));
const rate = positive('rate', values.rate, 1);
const workers = Math.floor(positive('workers', values.workers, 1));
const members = Math.floor(positive('members', values.members, 1));

for (let round = 0; round < rounds; round++) {
  for (const load of ['ingestion', 'shoppers'] as const) {
    const port = 27_000 + Math.floor(Math.random() * 1_000);
    let histories: Histories | undefined;
    const server = await startScratchServer({ name: 'cpu-breakdown', source: `serve-bench${servedShapeSuffix(members)}`, flags: positionals, workers, port, onStore: async (store) => void (histories = await readHistories(store)) });
    try {
      const work = new Workloads(histories!, `http://127.0.0.1:${port}`, SCRATCH_SERVER_KEYS, 31 + round);
      const run = (runSeconds: number) =>
        load === 'ingestion'
          ? runLoad({ host: '127.0.0.1', port, mode: 'closed', connections: INGEST_CONNECTIONS, seconds: runSeconds, next: (): LoadRequest => work.ingestBatch(INGEST_BATCH) })
          : runLoad({ host: '127.0.0.1', port, mode: 'open', rate, connections: OPEN_LOOP_CONNECTIONS, seconds: runSeconds, next: (): LoadRequest => work.active() });
      await run(3);
      const before = threadCpu(server.process.pid!);
      const generatorBefore = process.cpuUsage();
      const result = await run(seconds);
      const generator = process.cpuUsage(generatorBefore);
      const after = threadCpu(server.process.pid!);
      const units = load === 'ingestion' ? result.completed * INGEST_BATCH : result.completed;
      const threads = threadCpuMicrosPer(before, after, units);
      const serverTotal = Math.round(Object.values(threads).reduce((a, b) => a + b, 0) * 10) / 10;
      console.log(
        JSON.stringify({
          load,
          members,
          round,
          ...(load === 'ingestion' ? { events_per_s: Math.round(result.rps * INGEST_BATCH) } : { offered_pairs_per_s: rate, pairs_per_s: Math.round(result.rps), get_p99_ms: result.steps['recommendations']?.p99_ms }),
          failed: result.failed,
          [load === 'ingestion' ? 'cpu_us_per_event' : 'cpu_us_per_pair']: { server: serverTotal, load_generator: Math.round((generator.user + generator.system) / units * 10) / 10, ...threads },
        }),
      );
    } finally {
      server.process.kill('SIGTERM');
      await new Promise((resolve) => server.process.once('exit', resolve));
    }
  }
}
