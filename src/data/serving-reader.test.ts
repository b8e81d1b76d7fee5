import { expect, it } from 'vitest';
import { describeEachProvider, scratchStorePerTest } from '../../test/support/test-stores.js';
import { servingReader } from './serving-reader.js';

describeEachProvider('servingReader', (provider) => {
  const store = scratchStorePerTest(provider);

  it('remembers the internal id of a user it found, and looks up again one it did not', async () => {
    const reader = servingReader(store());
    try {
      const { id } = await store().prisma.user.create({ data: { externalId: 'ann' } });
      expect(await reader.userId('ann')).toBe(id);
      expect(await reader.userId('bob')).toBeUndefined();
      // Ids never change in attnrec; changing one behind the reader's back shows it is not read again.
      await store().prisma.user.update({ where: { id }, data: { externalId: 'ann-renamed' } });
      expect(await reader.userId('ann')).toBe(id);
      const bob = await store().prisma.user.create({ data: { externalId: 'bob' } });
      expect(await reader.userId('bob')).toBe(bob.id);
    } finally {
      reader.close();
    }
  });
});
