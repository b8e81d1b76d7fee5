// Preloaded into a server by bench/tail-sources.ts (node --import): on the main thread only, records
// every stretch over 3 ms in which a 1-ms interval timer could not run (the event loop was busy or its
// thread was off the CPU) and every garbage-collection pause, with wall-clock start times, and writes
// them as JSON to $EVENT_LOOP_GAPS_FILE when the process exits. The 1-ms timer costs the event loop
// ~1,000 wake-ups a second, so the probe's p99 is not the benchmark's.
import { writeFileSync } from 'node:fs';
import { PerformanceObserver, performance } from 'node:perf_hooks';
import { isMainThread } from 'node:worker_threads';

const file = process.env.EVENT_LOOP_GAPS_FILE;
if (isMainThread && file) {
  const gaps = [];
  const gcs = [];
  let last = performance.now();
  setInterval(() => {
    const now = performance.now();
    if (now - last > 3) gaps.push({ at: performance.timeOrigin + last, ms: now - last });
    last = now;
  }, 1).unref();
  new PerformanceObserver((list) => {
    for (const entry of list.getEntries()) gcs.push({ at: performance.timeOrigin + entry.startTime, ms: entry.duration, kind: entry.detail?.kind });
  }).observe({ entryTypes: ['gc'] });
  process.on('exit', () => writeFileSync(file, JSON.stringify({ gaps, gcs })));
}
