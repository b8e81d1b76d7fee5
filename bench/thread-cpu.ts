import { execFileSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';

/**
 * A process's CPU by thread, Linux only: utime + stime of each /proc/<pid>/task/<tid>/stat, in seconds,
 * summed per thread name. The API names its threads (src/thread-priority.mjs: attnrec-live-<n>,
 * attnrec-bg, attnrec-writer, attnrec-reader, attnrec-wal); the main thread is the event loop; Node's own threads
 * (V8's platform workers and GC helpers, libuv's pool, the TypeScript loader's hooks) are all `node`.
 * A thread that ended between two readings takes its CPU with it (the background worker between
 * warm-ups). Empty where /proc cannot be read.
 */
export function threadCpu(pid: number): Map<string, number> {
  const seconds = new Map<string, number>();
  let tids: string[];
  try {
    tids = readdirSync(`/proc/${pid}/task`);
  } catch {
    return seconds;
  }
  for (const tid of tids) {
    try {
      const cpu = statCpuSeconds(`/proc/${pid}/task/${tid}/stat`);
      const name = Number(tid) === pid ? 'event loop' : readFileSync(`/proc/${pid}/task/${tid}/comm`, 'utf8').trim();
      seconds.set(name, (seconds.get(name) ?? 0) + cpu);
    } catch {
      // The thread ended while being read.
    }
  }
  return seconds;
}

/** utime + stime, seconds, of the process or thread whose /proc stat file is `path` (Linux). */
export function statCpuSeconds(path: string): number {
  const stat = readFileSync(path, 'utf8');
  // Fields after the command name (which may hold spaces) start at state: utime and stime are the 12th and 13th of those.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(fields[11]) + Number(fields[12])) / CLOCK_TICKS;
}

/** CPU ms per second of wall time per thread name between two readings of threadCpu, busiest first. */
export function threadCpuPerSecond(before: ReadonlyMap<string, number>, after: ReadonlyMap<string, number>, wallSeconds: number): Record<string, number> {
  return perThread(before, after, (seconds) => Math.round((seconds * 1_000) / wallSeconds));
}

/** CPU µs per unit of work (an event stored, a request answered) per thread name between two readings of threadCpu, to 0.1 µs, busiest first. */
export function threadCpuMicrosPer(before: ReadonlyMap<string, number>, after: ReadonlyMap<string, number>, units: number): Record<string, number> {
  if (!(units > 0)) throw new RangeError(`units must be positive; got ${units}`);
  return perThread(before, after, (seconds) => Math.round((seconds * 1e7) / units) / 10);
}

function perThread(before: ReadonlyMap<string, number>, after: ReadonlyMap<string, number>, scale: (seconds: number) => number): Record<string, number> {
  return Object.fromEntries(
    [...after]
      .map(([name, s]) => [name, scale(s - (before.get(name) ?? 0))] as const)
      .filter(([, value]) => value > 0)
      .sort((a, b) => b[1] - a[1]),
  );
}

const CLOCK_TICKS = ((): number => {
  try {
    return Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
  } catch {
    return 100;
  }
})();
