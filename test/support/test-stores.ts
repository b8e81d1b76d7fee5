import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, inject } from 'vitest';
import { migrate } from '../../src/data/migrate.js';
import { openStore, type Store } from '../../src/data/store.js';
import { createDatabase, dropDatabase } from '../../src/cli/throwaway-postgres.js';

export type Provider = Store['provider'];

/** A database URL for a fresh, empty database of the provider, and a way to throw it away. */
export interface ScratchDatabase {
  readonly url: string;
  dispose(): Promise<void>;
}

let counter = 0;

export async function scratchDatabase(provider: Provider): Promise<ScratchDatabase> {
  if (provider === 'sqlite') {
    const dir = mkdtempSync(join(tmpdir(), 'attnrec-sqlite-'));
    return { url: `file:${join(dir, 'test.db')}`, dispose: async () => rmSync(dir, { recursive: true, force: true }) };
  }
  const admin = inject('pgAdminUrl');
  if (!admin) throw new Error('PostgreSQL is not available in this run');
  const name = `t_${process.pid}_${Date.now().toString(36)}_${counter++}`;
  const url = await createDatabase(admin, name);
  return { url, dispose: () => dropDatabase(admin, name) };
}

/** A migrated, empty store; `dispose` closes it and removes the database. */
export async function scratchStore(provider: Provider): Promise<Store & { dispose(): Promise<void> }> {
  const database = await scratchDatabase(provider);
  const store = openStore(database.url);
  await migrate(store);
  return Object.assign(store, {
    async dispose() {
      await store.close();
      await database.dispose();
    },
  });
}

export const postgresAvailable = (): boolean => inject('pgAdminUrl') !== '';

/**
 * Runs a suite once per provider: SQLite always, PostgreSQL whenever the test
 * cluster runs (global setup says loudly when it cannot).
 */
export function describeEachProvider(name: string, suite: (provider: Provider) => void): void {
  describe(`${name} [sqlite]`, () => suite('sqlite'));
  describe.skipIf(!postgresAvailable())(`${name} [postgresql]`, () => suite('postgresql'));
}

/** A fresh migrated store for each test of the enclosing suite; call the returned function inside a test. */
export function scratchStorePerTest(provider: Provider): () => Store & { dispose(): Promise<void> } {
  let store: (Store & { dispose(): Promise<void> }) | undefined;
  beforeEach(async () => {
    store = await scratchStore(provider);
  });
  afterEach(async () => {
    await store?.dispose();
    store = undefined;
  });
  return () => {
    if (!store) throw new Error('scratchStorePerTest: no store outside a test');
    return store;
  };
}
