/**
 * Which PostgreSQL job queue runs the scheduled retrain (issue #19): pg-boss
 * or graphile-worker, measured side by side on throwaway PostgreSQL databases.
 * Each library runs as two "replicas" (two instances on one database) with the
 * same every-minute schedule, for `--minutes` ticks. Measured: start-up on a
 * fresh database (its schema), runs per tick (must be exactly one), the lag
 * from the minute to the handler, and the transactions the database commits
 * per second while the queue idles.
 *
 * Only the chosen library is a dependency. To measure again:
 *   npm install --no-save graphile-worker@0.16.6 && npx tsx bench/job-queue-choice.ts --minutes 3
 * Prints one JSON object; docs/architecture.md has the decision.
 */
import { parseArgs } from 'node:util';
import pg from 'pg';
import { createDatabase, startThrowawayPostgres } from '../src/cli/throwaway-postgres.js';

const { values } = parseArgs({ options: { minutes: { type: 'string', default: '3' } } });
const minutes = Number(values.minutes);
if (!Number.isInteger(minutes) || minutes < 1) throw new Error(`--minutes must be a whole number ≥ 1; got '${values.minutes}'`);

interface Replica {
  stop(): Promise<void>;
}
interface Library {
  readonly name: string;
  readonly version: string;
  start(url: string, replica: number, onRun: (replica: number) => void): Promise<Replica>;
}

// Not a dependency (install it with --no-save to measure): a variable keeps the type checker from resolving it.
const PG_BOSS: string = 'pg-boss';

const libraries: Library[] = [
  {
    name: 'pg-boss',
    version: '10.3.3',
    async start(url, replica, onRun) {
      // pg-boss 10 is CommonJS: its class is the default export.
      const PgBoss = ((await import(PG_BOSS)) as { default: new (options: object) => PgBossLike }).default;
      const boss = new PgBoss({ connectionString: url, max: 2 });
      boss.on('error', (error: unknown) => console.error(`pg-boss replica ${replica}:`, error));
      await boss.start();
      await boss.createQueue('retrain');
      await boss.schedule('retrain', '* * * * *');
      await boss.work('retrain', async () => onRun(replica));
      return { stop: () => boss.stop({ graceful: false, wait: true }) };
    },
  },
  {
    name: 'graphile-worker',
    version: '0.16.6',
    async start(url, replica, onRun) {
      const { run, Logger } = (await import('graphile-worker')) as unknown as { run: (options: object) => Promise<{ stop(): Promise<void> }>; Logger: new (factory: () => () => void) => object };
      const runner = await run({
        connectionString: url,
        concurrency: 1,
        noHandleSignals: true,
        pollInterval: 2000,
        logger: new Logger(() => () => {}), // its INFO lines would go to stdout, where the result is printed
        taskList: { retrain: async () => onRun(replica) },
        crontab: '* * * * * retrain',
      });
      return { stop: () => runner.stop() };
    },
  },
];

interface PgBossLike {
  on(event: 'error', listener: (error: unknown) => void): void;
  start(): Promise<unknown>;
  createQueue(name: string): Promise<void>;
  schedule(name: string, cron: string): Promise<void>;
  work(name: string, handler: () => Promise<void>): Promise<string>;
  stop(options: object): Promise<void>;
}

const server = await startThrowawayPostgres();
try {
  const results = await Promise.all(
    libraries.map(async (library) => {
      const url = await createDatabase(server.url, library.name.replace('-', '_'));
      const runs: { replica: number; at: number }[] = [];
      const started = performance.now();
      let replicas: Replica[];
      try {
        replicas = [await library.start(url, 1, (r) => runs.push({ replica: r, at: Date.now() }))];
      } catch (error) {
        return { library: library.name, version: library.version, error: (error as Error).message };
      }
      const firstStartMs = performance.now() - started;
      replicas.push(await library.start(url, 2, (r) => runs.push({ replica: r, at: Date.now() })));
      const client = new pg.Client({ connectionString: url });
      await client.connect();
      const commits = async () => Number((await client.query<{ n: string }>('SELECT xact_commit::text AS n FROM pg_stat_database WHERE datname = current_database()')).rows[0]!.n);
      const from = Date.now();
      const before = await commits();
      // Until `minutes` whole minutes have ticked, plus 20 s for the last run to arrive.
      const lastTick = Math.ceil(from / 60_000) * 60_000 + (minutes - 1) * 60_000;
      await new Promise((resolve) => setTimeout(resolve, lastTick + 20_000 - Date.now()));
      const seconds = (Date.now() - from) / 1000;
      const after = await commits();
      await client.end();
      await Promise.all(replicas.map((r) => r.stop()));
      const ticks = new Map<number, { replica: number; lagMs: number }[]>();
      for (let tick = Math.ceil(from / 60_000) * 60_000; tick <= lastTick; tick += 60_000) ticks.set(tick, []);
      for (const run of runs) {
        const tick = Math.floor(run.at / 60_000) * 60_000;
        ticks.get(tick)?.push({ replica: run.replica, lagMs: run.at - tick });
      }
      const perTick = [...ticks.values()];
      return {
        library: library.name,
        version: library.version,
        first_start_ms: Math.round(firstStartMs),
        ticks: perTick.length,
        runs: runs.length,
        runs_per_tick: perTick.map((t) => t.length),
        lag_ms: perTick.flatMap((t) => t.map((r) => r.lagMs)),
        replicas_that_ran: [...new Set(runs.map((r) => r.replica))].sort(),
        idle_commits_per_s: Math.round(((after - before) / seconds) * 10) / 10,
      };
    }),
  );
  console.log(JSON.stringify({ benchmark: 'job-queue-choice', started: new Date().toISOString(), minutes, results }, null, 2));
} finally {
  server.stop();
}
