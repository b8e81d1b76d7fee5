#!/usr/bin/env -S npx tsx
import { runJob, type FlagSpec, type JobSpec } from '../src/cli/job.js';
import { DEFAULT_DATABASE_URL } from '../src/config/database-url.js';
import { migrate } from '../src/data/migrate.js';
import { openStore } from '../src/data/store.js';

const spec = {
  name: 'jobs/migrate',
  summary: 'apply pending SQL migrations (prisma/migrations/<provider>) to the database',
  usage: 'npm run db:migrate -- [--database-url URL]',
  flags: {
    'database-url': { type: 'string', value: 'url', description: `Database (default: $DATABASE_URL, else ${DEFAULT_DATABASE_URL})` },
  },
  details: `
Each migration runs in its own transaction and is recorded in _attnrec_migrations with its checksum; an
applied migration whose file changed, or a database migrated by a newer attnrec, is refused.`,
} satisfies JobSpec<Record<string, FlagSpec>>;

await runJob(spec, async ({ flags }) => {
  const store = openStore(flags['database-url'] ?? process.env.DATABASE_URL);
  try {
    const report = await migrate(store);
    const where = store.target.provider === 'sqlite' ? store.target.file : 'PostgreSQL';
    process.stdout.write(
      report.applied.length > 0
        ? `applied ${report.applied.length} migration(s) to ${where}: ${report.applied.join(', ')}\n`
        : `${where} is up to date (${report.alreadyApplied.length} migration(s) applied earlier)\n`,
    );
  } finally {
    await store.close();
  }
});
