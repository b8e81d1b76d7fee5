import { expect, it } from 'vitest';
import { describeEachProvider, scratchStorePerTest } from '../../test/support/test-stores.js';
import { markActiveVersion } from './model-versions.js';

describeEachProvider('markActiveVersion', (provider) => {
  const store = scratchStorePerTest(provider);

  it('makes one version the only active one, and leaves the rest of each row as it was', async () => {
    const { prisma } = store();
    const create = (active: boolean) => prisma.modelVersion.create({ data: { status: 'ready', config: { dim: 8 }, dataHash: 'h', artifactPath: '/a', active } });
    await create(true);
    const second = await create(false);
    const third = await create(false);
    await markActiveVersion(store(), second.id);
    const rows = await prisma.modelVersion.findMany({ orderBy: { id: 'asc' } });
    expect(rows.map((r) => r.active)).toEqual([false, true, false]);
    expect(rows.map((r) => r.status)).toEqual(['ready', 'ready', 'ready']);
    // Again, and for the version already active: still exactly one.
    await markActiveVersion(store(), third.id);
    await markActiveVersion(store(), third.id);
    expect((await prisma.modelVersion.findMany({ where: { active: true } })).map((r) => r.id)).toEqual([third.id]);
  });
});
