import { mkdirSync, writeFileSync } from 'node:fs';
import { cpus, totalmem } from 'node:os';
import { join } from 'node:path';

/** What a benchmark ran on, recorded with every result. */
export function machineFacts(): Record<string, string | number> {
  const cpu = cpus();
  return {
    cpu: cpu[0]?.model ?? 'unknown',
    cores: cpu.length,
    memory_gib: Math.round((totalmem() / 2 ** 30) * 10) / 10,
    node: process.version,
    platform: `${process.platform}-${process.arch}`,
  };
}

export function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

export function timestampForFile(date = new Date()): string {
  return date.toISOString().replace(/[:.]/g, '-');
}

/** Writes a benchmark's JSON text to `<resultsDir>/<name>-<timestamp>.json` and returns the file's path. */
export function writeBenchResult(resultsDir: string, name: string, started: Date, json: string): string {
  mkdirSync(resultsDir, { recursive: true });
  const file = join(resultsDir, `${name}-${timestampForFile(started)}.json`);
  writeFileSync(file, `${json}\n`);
  return file;
}
