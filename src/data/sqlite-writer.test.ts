import { describe, expect, it } from 'vitest';
import { WRITER_CACHE_KIB, writerCacheSize } from './sqlite-writer.js';

describe('writerCacheSize', () => {
  const lockingPage = 2 ** 30 / 4096 + 1;

  it("caps the writer's cache while the database is smaller than the locking page", () => {
    expect(writerCacheSize({ cacheSize: -131_072, pageSize: 4096, pageCount: 60_000 })).toBe(-WRITER_CACHE_KIB);
    expect(writerCacheSize({ cacheSize: -131_072, pageSize: 4096, pageCount: lockingPage - 1 })).toBe(-WRITER_CACHE_KIB);
    // A cache given in pages (positive) is compared in KiB: 32,768 pages of 4 KiB are 128 MiB.
    expect(writerCacheSize({ cacheSize: 32_768, pageSize: 4096, pageCount: 60_000 })).toBe(-WRITER_CACHE_KIB);
  });

  it("keeps a cache already smaller than the cap, and the main connection's past the locking page", () => {
    expect(writerCacheSize({ cacheSize: -2_000, pageSize: 4096, pageCount: 60_000 })).toBe(-2_000);
    expect(writerCacheSize({ cacheSize: 1_000, pageSize: 4096, pageCount: 60_000 })).toBe(1_000);
    expect(writerCacheSize({ cacheSize: -131_072, pageSize: 4096, pageCount: lockingPage })).toBe(-131_072);
    // With 64-KiB pages the locking byte is on page 16,385.
    expect(writerCacheSize({ cacheSize: -131_072, pageSize: 65_536, pageCount: 16_384 })).toBe(-WRITER_CACHE_KIB);
    expect(writerCacheSize({ cacheSize: -131_072, pageSize: 65_536, pageCount: 16_385 })).toBe(-131_072);
  });
});
