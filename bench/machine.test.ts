import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { MONITOR_TAIL_SHARE, memoryMonitorDescription, monitorTailNote } from './machine.js';

describe("the memory monitor's share of a run", () => {
  it('marks a run whose monitor held a core at least 2 % of the time', () => {
    // (c) at 1,000 req/s, 2026-12-06 17:44: 543 ms in 15 s, p99 20.9 ms.
    expect(monitorTailNote(543, 15)).toContain('3.6 % of this run');
    expect(monitorTailNote(543, 15)).toContain('36 ms a second');
    expect(monitorTailNote(MONITOR_TAIL_SHARE * 15_000, 15)).toBeDefined();
  });

  it('leaves a quiet run, a machine with no monitor and a run of no time alone', () => {
    // 2026-12-05 18:50: 69 ms in 15 s, p99 2.7 ms; 2026-12-06 09:54: 118 ms.
    expect(monitorTailNote(69, 15)).toBeUndefined();
    expect(monitorTailNote(118, 15)).toBeUndefined();
    expect(monitorTailNote(undefined, 15)).toBeUndefined();
    expect(monitorTailNote(500, 0)).toBeUndefined();
  });
});

describe("the memory monitor's description", () => {
  /** A DAMON sysfs tree as this machine's kernel (6.18) lays it out, with only the files the description reads. */
  function sysfs(files: Record<string, string>): string {
    const root = mkdtempSync(join(tmpdir(), 'damon-'));
    for (const [path, value] of Object.entries(files)) {
      mkdirSync(dirname(join(root, path)), { recursive: true });
      writeFileSync(join(root, path), `${value}\n`);
    }
    return root;
  }

  it("names the sampling interval, the regions' range and each scheme's action with the pages its filters let through", () => {
    // As on 2026-12-06: pageout of cold pages, anonymous ones rejected, unmapped ones (page cache) allowed.
    const root = sysfs({
      '0/state': 'on',
      '0/contexts/0/operations': 'paddr',
      '0/contexts/0/monitoring_attrs/intervals/sample_us': '500000',
      '0/contexts/0/monitoring_attrs/nr_regions/min': '1024',
      '0/contexts/0/monitoring_attrs/nr_regions/max': '8192',
      '0/contexts/0/schemes/nr_schemes': '1',
      '0/contexts/0/schemes/0/action': 'pageout',
      '0/contexts/0/schemes/0/ops_filters/nr_filters': '2',
      '0/contexts/0/schemes/0/ops_filters/0/type': 'anon',
      '0/contexts/0/schemes/0/ops_filters/0/matching': 'Y',
      '0/contexts/0/schemes/0/ops_filters/0/allow': 'N',
      '0/contexts/0/schemes/0/ops_filters/1/type': 'unmapped',
      '0/contexts/0/schemes/0/ops_filters/1/matching': 'Y',
      '0/contexts/0/schemes/0/ops_filters/1/allow': 'Y',
      '1/state': 'off',
    });
    try {
      expect(memoryMonitorDescription(root)).toBe('DAMON (paddr every 500 ms, 1024-8192 regions, schemes: pageout (rejects anon, allows unmapped))');
    } finally {
      rmSync(root, { recursive: true, force: true });
    }
  });

  it('says nothing where no monitor runs, and leaves out what an older kernel does not have', () => {
    const stopped = sysfs({ '0/state': 'off' });
    const older = sysfs({ '0/state': 'on', '0/contexts/0/operations': 'vaddr', '0/contexts/0/monitoring_attrs/intervals/sample_us': '5000' });
    try {
      expect(memoryMonitorDescription(stopped)).toBeUndefined();
      expect(memoryMonitorDescription(join(stopped, 'absent'))).toBeUndefined();
      expect(memoryMonitorDescription(older)).toBe('DAMON (vaddr every 5 ms)');
    } finally {
      rmSync(stopped, { recursive: true, force: true });
      rmSync(older, { recursive: true, force: true });
    }
  });
});
