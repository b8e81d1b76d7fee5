import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { readLineBatches } from './line-reader.js';

async function collect(content: string | Buffer, chunk: number): Promise<{ lines: string[]; numbers: number[]; bytes: number }> {
  const file = join(mkdtempSync(join(tmpdir(), 'attnrec-lines-')), 'f.txt');
  writeFileSync(file, content);
  const lines: string[] = [];
  const numbers: number[] = [];
  let bytes = 0;
  for await (const batch of readLineBatches(file, chunk)) {
    batch.lines.forEach((line, i) => {
      lines.push(line);
      numbers.push(batch.firstLine + i);
    });
    bytes = batch.bytesRead;
  }
  return { lines, numbers, bytes };
}

describe('readLineBatches', () => {
  it('numbers lines across chunk boundaries, strips CRLF and the BOM, keeps a last line without newline', async () => {
    const text = '\ufeffalpha\r\nbeta\n\ngamma délta\nlast';
    for (const chunk of [1, 2, 3, 7, 1 << 20]) {
      const { lines, numbers, bytes } = await collect(text, chunk);
      expect(lines).toEqual(['alpha', 'beta', '', 'gamma délta', 'last']);
      expect(numbers).toEqual([1, 2, 3, 4, 5]);
      expect(bytes).toBe(Buffer.byteLength(text));
    }
  });

  it('decodes a multi-byte character split between chunks', async () => {
    const { lines } = await collect('é€😀\nx\n', 1);
    expect(lines).toEqual(['é€😀', 'x']);
  });

  it('yields nothing for an empty file', async () => {
    expect((await collect('', 4)).lines).toEqual([]);
  });
});
