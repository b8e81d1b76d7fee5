import { open } from 'node:fs/promises';
import { StringDecoder } from 'node:string_decoder';

export interface LineBatch {
  /** Lines without their terminator (`\n` or `\r\n`). */
  readonly lines: string[];
  /** 1-based number of the first line in `lines`. */
  readonly firstLine: number;
  /** Bytes of the file consumed so far, for progress and ETA. */
  readonly bytesRead: number;
}

/**
 * Reads a text file as batches of lines. Batching keeps the per-line cost to
 * a string split: one await per chunk rather than one per line, which is what
 * lets an import parse millions of lines a second. Chunks start small and
 * double up to `maxChunkBytes`, so the first lines reach a pipelined consumer
 * within milliseconds while later chunks are large.
 */
export async function* readLineBatches(path: string, maxChunkBytes = 1 << 20, firstChunkBytes = Math.min(maxChunkBytes, 64 << 10)): AsyncGenerator<LineBatch> {
  const decoder = new StringDecoder('utf8');
  let carry = '';
  let nextLine = 1;
  let bytesRead = 0;
  let atStart = true;
  const file = await open(path, 'r');
  try {
    for (let size = firstChunkBytes; ; size = Math.min(maxChunkBytes, size * 2)) {
      const buffer = Buffer.allocUnsafe(size);
      const { bytesRead: got } = await file.read(buffer, 0, size, null);
      if (got === 0) break;
      bytesRead += got;
      let text = carry + decoder.write(buffer.subarray(0, got));
      if (atStart && text.length > 0) {
        if (text.charCodeAt(0) === 0xfeff) text = text.slice(1); // byte-order mark
        atStart = false;
      }
      const lastBreak = text.lastIndexOf('\n');
      if (lastBreak === -1) {
        carry = text;
        continue;
      }
      carry = text.slice(lastBreak + 1);
      const lines = text.slice(0, lastBreak).split('\n');
      stripCarriageReturns(lines);
      yield { lines, firstLine: nextLine, bytesRead };
      nextLine += lines.length;
    }
  } finally {
    await file.close();
  }
  const rest = carry + decoder.end();
  if (rest.length > 0) {
    const lines = [rest];
    stripCarriageReturns(lines);
    yield { lines, firstLine: nextLine, bytesRead };
  }
}

function stripCarriageReturns(lines: string[]): void {
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]!;
    if (line.charCodeAt(line.length - 1) === 13) lines[i] = line.slice(0, -1);
  }
}
