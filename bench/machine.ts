import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
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
    ...kernelFacts(),
  };
}

const DAMON = '/sys/kernel/mm/damon/admin/kdamonds';

/** A /proc or /sys file's text, or undefined where it does not exist (a process or thread that ended, a setting this kernel lacks). */
function read(path: string): string | undefined {
  try {
    return readFileSync(path, 'utf8').trim();
  } catch {
    return undefined;
  }
}

/**
 * Kernel settings that shape tail latency on the machine, where they exist: a DAMON memory monitor
 * (its kernel thread wakes every sampling interval and runs ~10 ms on one core, docs/serving-performance.md)
 * and the scheduler's vCPU packing of some virtual machines' kernels. Empty on machines without them.
 */
function kernelFacts(): Record<string, string | number> {
  const facts: Record<string, string | number> = {};
  const monitor = memoryMonitorDescription();
  if (monitor !== undefined) facts.memory_monitor = monitor;
  const pack = read('/proc/sys/kernel/sched_vcpu_pack');
  if (pack !== undefined) facts.sched_vcpu_pack = Number(pack);
  return facts;
}

/**
 * The running DAMON monitors under `root` (sysfs), in words: what it watches, how often it samples, how many
 * regions it may split memory into (its CPU grows with the sampled regions that lie on mapped pages:
 * docs/serving-performance.md, "Where the memory monitor's CPU goes") and each scheme's action with the
 * kinds of page its filters let through. Undefined where none runs.
 */
export function memoryMonitorDescription(root = DAMON): string | undefined {
  const monitors = existsSync(root) ? readdirSync(root).filter((name) => /^\d+$/.test(name)) : [];
  const running = monitors
    .filter((k) => read(`${root}/${k}/state`) === 'on')
    .map((k) => {
      const context = `${root}/${k}/contexts/0`;
      const sampleUs = Number(read(`${context}/monitoring_attrs/intervals/sample_us`));
      const minRegions = read(`${context}/monitoring_attrs/nr_regions/min`);
      const maxRegions = read(`${context}/monitoring_attrs/nr_regions/max`);
      // Its schemes' actions (pageout, …): one pageout scheme on 2026-12-02 and 2026-12-06, none on 2026-12-04.
      const count = Number(read(`${context}/schemes/nr_schemes`)) || 0;
      const schemes = Array.from({ length: count }, (_, i) => {
        const scheme = `${context}/schemes/${i}`;
        const filters = Array.from({ length: Number(read(`${scheme}/ops_filters/nr_filters`)) || 0 }, (_, f) => {
          const filter = `${scheme}/ops_filters/${f}`;
          const matching = read(`${filter}/matching`) === 'Y';
          const allow = read(`${filter}/allow`) === 'Y';
          return `${allow ? 'allows' : 'rejects'} ${matching ? '' : 'non-'}${read(`${filter}/type`) ?? '?'}`;
        });
        return `${read(`${scheme}/action`) ?? '?'}${filters.length > 0 ? ` (${filters.join(', ')})` : ''}`;
      });
      return [
        read(`${context}/operations`) ?? 'no context',
        Number.isFinite(sampleUs) ? ` every ${sampleUs / 1000} ms` : '',
        minRegions !== undefined && maxRegions !== undefined ? `, ${minRegions}-${maxRegions} regions` : '',
        schemes.length > 0 ? `, schemes: ${schemes.join(', ')}` : '',
      ].join('');
    });
  return running.length > 0 ? `DAMON (${running.join('; ')})` : undefined;
}

/** The kernel's memory-monitor threads (DAMON's kdamond.N), by pid; none on most machines. */
export function memoryMonitorThreads(): number[] {
  const pids: number[] = [];
  if (!existsSync('/proc')) return pids;
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    if (read(`/proc/${entry}/comm`)?.startsWith('kdamond')) pids.push(Number(entry));
  }
  return pids;
}

/**
 * The share of a run's time from which the memory monitor's bursts are taken to set its p99. Measured in the
 * serve benchmark's runs of (c) at 1,000 req/s: 0.5-0.8 % of the time on quiet hours, whose p99 was 2.7-4.2 ms
 * (2026-12-04 20:17, 2026-12-05 18:50, 2026-12-06 09:54, 13:03, 16:07); 2.9-3.6 % on busy ones, whose p99 was
 * 16.8-20.9 ms (2026-12-04 18:31, 2026-12-06 17:44 and 18:38). A p99 is the slowest 1 % of requests, and a
 * request due while the monitor holds one of two cores waits whenever the other is busy too; 2 % lies between
 * the two kinds of hour.
 */
export const MONITOR_TAIL_SHARE = 0.02;

/** The words every monitorTailNote holds, by which bench/summary.ts finds the targets that carry one. */
export const MONITOR_NOTE_MARK = "the machine's memory monitor held a core";

/**
 * A note for a latency measured over `seconds` while the memory monitor ran `monitorMs`, where that is at
 * least MONITOR_TAIL_SHARE of the time; else undefined (and where the machine has no monitor).
 */
export function monitorTailNote(monitorMs: number | undefined, seconds: number): string | undefined {
  if (monitorMs === undefined || !(seconds > 0)) return undefined;
  const share = monitorMs / (seconds * 1_000);
  return share >= MONITOR_TAIL_SHARE
    ? `${MONITOR_NOTE_MARK} ${(share * 100).toFixed(1)} % of this run's time (${Math.round(monitorMs / seconds)} ms a second; quiet hours 0.5-0.8 %): this tail is the machine's as much as the server's`
    : undefined;
}

/** CPU milliseconds the given threads have run (their schedstat), summed; a thread that is gone counts 0. */
export function threadsCpuMs(pids: readonly number[]): number {
  let ns = 0;
  for (const pid of pids) ns += Number(read(`/proc/${pid}/schedstat`)?.split(' ')[0] ?? 0);
  return ns / 1e6;
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
