/**
 * Stores versions' representations of every user's history in a store, as the training job does after
 * training (src/train/store-representations.ts), in a process of its own: the serve benchmark runs it
 * before each configuration, and its load generator's heap then holds none of it.
 *
 *   npx tsx bench/store-representations.ts <database-url> <version> [<version> …]
 *
 * Prints one JSON object: for each version, the distinct histories stored and the seconds it took.
 */
import { openStore } from '../src/data/store.js';
import { storeRepresentations } from '../src/train/store-representations.js';

const [url, ...versions] = process.argv.slice(2);
if (!url || versions.length === 0 || versions.some((v) => !/^\d+$/.test(v))) {
  process.stderr.write('usage: npx tsx bench/store-representations.ts <database-url> <version> [<version> …]\n');
  process.exit(2);
}
const store = openStore(url);
try {
  const out: Record<string, { users: number; seconds: number }> = {};
  for (const id of versions.map(Number)) {
    const row = await store.prisma.modelVersion.findUniqueOrThrow({ where: { id }, select: { id: true, createdAt: true, artifactPath: true } });
    const stored = await storeRepresentations(store, row);
    out[String(id)] = { users: stored.users, seconds: Math.round(stored.seconds * 10) / 10 };
  }
  process.stdout.write(`${JSON.stringify(out)}\n`);
} finally {
  await store.close();
}
