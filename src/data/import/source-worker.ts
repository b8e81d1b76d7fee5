import { parentPort, workerData } from 'node:worker_threads';
import { isAppError } from '../../errors.js';
import { toColumns, transferables, type ColumnBatch } from './event-columns.js';
import { readEventSource, type SourceOptions } from './sources.js';

/**
 * Worker thread entry: parses an event file and posts columnar batches, at
 * most as many as the reader has granted credits for (back-pressure: the
 * parser never runs more than a couple of batches ahead of the writer).
 */
export type WorkerMessage =
  | { readonly kind: 'batch'; readonly batch: ColumnBatch }
  | { readonly kind: 'done' }
  | { readonly kind: 'error'; readonly code?: string; readonly message: string; readonly details?: Record<string, unknown>; readonly stack?: string };

const port = parentPort!;
const { path, options } = workerData as { path: string; options: SourceOptions };
let credits = 0;
let wake: (() => void) | undefined;
port.on('message', (message: { credit: number }) => {
  credits += message.credit;
  wake?.();
});

try {
  for await (const batch of readEventSource(path, options)) {
    while (credits === 0) await new Promise<void>((resolve) => (wake = resolve));
    credits--;
    const events = toColumns(batch.rows);
    const message: WorkerMessage = { kind: 'batch', batch: { events, bad: batch.bad, bytesRead: batch.bytesRead, linesRead: batch.linesRead } };
    port.postMessage(message, transferables(events));
  }
  port.postMessage({ kind: 'done' } satisfies WorkerMessage);
} catch (error) {
  const message: WorkerMessage = isAppError(error)
    ? { kind: 'error', code: error.code, message: error.message, details: { ...error.details } }
    : { kind: 'error', message: (error as Error)?.message ?? String(error), stack: (error as Error)?.stack };
  port.postMessage(message);
}
port.close();
