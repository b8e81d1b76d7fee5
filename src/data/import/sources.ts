import { extname } from 'node:path';
import { AppError } from '../../errors.js';
import { CsvRecordAssembler } from './csv.js';
import { buildEventRow, EVENT_FIELDS, isBadLine, type BadLine, type EventField, type EventRow } from './event-row.js';
import { normaliseEventType } from './event-types.js';
import { FieldError, parseExternalId, type TimeUnit } from './fields.js';
import { readLineBatches } from './line-reader.js';

/**
 * Readers for the event-log formats attnrec imports. Each yields batches of
 * validated rows plus the lines that failed (with line number and reason);
 * the caller decides whether a bad line stops the import or is skipped.
 * Problems with the file as a whole (a missing column) throw at once.
 */

export type EventFormat = 'sasrec' | 'csv' | 'jsonl';

/** ~80k CSV lines a batch: large enough for sorted inserts to pay off, small enough to stay light. */
const READ_CHUNK_BYTES = 4 << 20;

export interface SourceBatch {
  readonly rows: EventRow[];
  readonly bad: BadLine[];
  /** Bytes of the file consumed so far. */
  readonly bytesRead: number;
  /** Physical lines consumed so far. */
  readonly linesRead: number;
}

export interface SasrecOptions {
  /** Timestamp of each user's first event (ms since the epoch). */
  readonly baseTimeMs: number;
  /** Gap between a user's consecutive events (ms). */
  readonly stepMs: number;
  /** Event type given to every line (the Amazon sequences are purchases). */
  readonly eventType: string;
}

export interface SourceOptions {
  readonly format: EventFormat;
  readonly timeUnit: TimeUnit;
  readonly delimiter?: string;
  readonly sasrec: SasrecOptions;
}

export const DEFAULT_SASREC: SasrecOptions = { baseTimeMs: Date.UTC(2020, 0, 1), stepMs: 60_000, eventType: 'purchase' };

export function detectFormat(path: string): EventFormat {
  const ext = extname(path).toLowerCase();
  if (ext === '.csv' || ext === '.tsv') return 'csv';
  if (ext === '.jsonl' || ext === '.ndjson') return 'jsonl';
  if (ext === '.txt') return 'sasrec';
  throw new AppError('IMPORT_UNKNOWN_FORMAT', `cannot tell the format of '${path}' from its extension; pass --format sasrec|csv|jsonl`, { file: path });
}

export function readEventSource(path: string, options: SourceOptions): AsyncGenerator<SourceBatch> {
  switch (options.format) {
    case 'sasrec':
      return readSasrec(path, options.sasrec);
    case 'csv':
      return readCsvEvents(path, options.timeUnit, options.delimiter ?? (extname(path).toLowerCase() === '.tsv' ? '\t' : ','));
    case 'jsonl':
      return readJsonlEvents(path, options.timeUnit);
  }
}

/**
 * The SASRec text format: `user item` per line, each user's lines consecutive
 * and oldest first, no timestamps. Timestamps are synthesised as
 * base + position-in-user-history × step, so a re-import produces the same
 * events (and the content key recognises them as duplicates).
 */
async function* readSasrec(path: string, options: SasrecOptions): AsyncGenerator<SourceBatch> {
  const type = normaliseEventType(options.eventType);
  if (type instanceof FieldError) throw new AppError('IMPORT_BAD_OPTION', `--sasrec-event-type: ${type.message}`);
  const positions = new Map<string, number>();
  let lastUser = '';
  let lastPosition = 0;
  for await (const batch of readLineBatches(path, READ_CHUNK_BYTES)) {
    const rows: EventRow[] = [];
    const bad: BadLine[] = [];
    for (let i = 0; i < batch.lines.length; i++) {
      const line = batch.firstLine + i;
      const text = batch.lines[i]!.trim();
      if (text === '') continue;
      const parts = text.split(/\s+/);
      if (parts.length !== 2) {
        bad.push({ line, code: 'BAD_FIELD_COUNT', message: `expected 'user item', found ${parts.length} field${parts.length === 1 ? '' : 's'}` });
        continue;
      }
      const user = parseExternalId(parts[0], 'user');
      const item = parseExternalId(parts[1], 'item');
      if (user instanceof FieldError || item instanceof FieldError) {
        const error = (user instanceof FieldError ? user : item) as FieldError;
        bad.push({ line, code: error.code, message: error.message });
        continue;
      }
      // Users' lines are consecutive, so the map is consulted once per user, not per line.
      let position: number;
      if (user === lastUser) position = ++lastPosition;
      else {
        position = positions.get(user!) ?? 0;
        if (lastUser !== '') positions.set(lastUser, lastPosition + 1);
        lastUser = user!;
        lastPosition = position;
      }
      rows.push({ line, user, session: null, item: item!, type, ts: options.baseTimeMs + position * options.stepMs, value: null, quantity: null, eventId: null, recommendationId: null });
    }
    yield { rows, bad, bytesRead: batch.bytesRead, linesRead: batch.firstLine + batch.lines.length - 1 };
  }
}

/** Header handling shared by the CSV event log and the item catalogue. */
export function mapHeader(path: string, header: string[], required: readonly string[][], known: readonly string[]): { index: Map<string, number>; ignored: string[] } {
  const names = header.map((h) => h.trim().toLowerCase());
  const index = new Map<string, number>();
  names.forEach((name, i) => {
    if (index.has(name)) throw new AppError('IMPORT_BAD_HEADER', `${path}:1: column '${name}' appears twice`, { file: path, line: 1 });
    index.set(name, i);
  });
  for (const anyOf of required) {
    if (!anyOf.some((name) => index.has(name))) {
      const wanted = anyOf.length === 1 ? `column '${anyOf[0]}'` : `one of the columns ${anyOf.map((n) => `'${n}'`).join(' or ')}`;
      throw new AppError('IMPORT_MISSING_COLUMN', `${path}:1: missing required ${wanted} (header has: ${names.join(', ')})`, {
        file: path,
        line: 1,
        column: anyOf.join('|'),
      });
    }
  }
  return { index, ignored: names.filter((n) => !known.includes(n)) };
}

const REQUIRED_EVENT_COLUMNS = [['user_id', 'session_id'], ['item_id'], ['event_type'], ['timestamp']];

async function* readCsvEvents(path: string, timeUnit: TimeUnit, delimiter: string): AsyncGenerator<SourceBatch> {
  let index: Map<string, number> | undefined;
  let width = 0;
  const assembler = new CsvRecordAssembler(delimiter);
  let fields: string[] = [];
  const get = (field: EventField): string | undefined => {
    const i = index!.get(field);
    return i === undefined ? undefined : fields[i];
  };
  let linesRead = 0;
  let bytesRead = 0;
  for await (const batch of readLineBatches(path, READ_CHUNK_BYTES)) {
    const rows: EventRow[] = [];
    const bad: BadLine[] = [];
    for (let i = 0; i < batch.lines.length; i++) {
      const record = assembler.push(batch.lines[i]!, batch.firstLine + i);
      if (record === null) continue;
      if (index === undefined) {
        index = mapHeader(path, record.fields, REQUIRED_EVENT_COLUMNS, EVENT_FIELDS).index;
        width = record.fields.length;
        continue;
      }
      if (record.fields.length === 1 && record.fields[0]!.trim() === '') continue; // blank line
      if (record.fields.length !== width) {
        bad.push({ line: record.line, code: 'BAD_FIELD_COUNT', message: `expected ${width} fields as in the header, found ${record.fields.length}` });
        continue;
      }
      fields = record.fields;
      const row = buildEventRow(get, record.line, timeUnit);
      if (isBadLine(row)) bad.push(row);
      else rows.push(row);
    }
    linesRead = batch.firstLine + batch.lines.length - 1;
    bytesRead = batch.bytesRead;
    yield { rows, bad, bytesRead, linesRead };
  }
  if (index === undefined) throw new AppError('IMPORT_BAD_HEADER', `${path}: the file is empty; the first line must be a header`, { file: path, line: 1 });
  const open = assembler.unterminatedLine();
  if (open !== null) {
    yield { rows: [], bad: [{ line: open, code: 'UNTERMINATED_QUOTE', message: 'a quoted field is never closed' }], bytesRead, linesRead };
  }
}

async function* readJsonlEvents(path: string, timeUnit: TimeUnit): AsyncGenerator<SourceBatch> {
  for await (const batch of readLineBatches(path, READ_CHUNK_BYTES)) {
    const rows: EventRow[] = [];
    const bad: BadLine[] = [];
    for (let i = 0; i < batch.lines.length; i++) {
      const line = batch.firstLine + i;
      const text = batch.lines[i]!;
      if (text.trim() === '') continue;
      let value: unknown;
      try {
        value = JSON.parse(text);
      } catch (error) {
        bad.push({ line, code: 'BAD_JSON', message: `not valid JSON: ${(error as Error).message}` });
        continue;
      }
      if (typeof value !== 'object' || value === null || Array.isArray(value)) {
        bad.push({ line, code: 'BAD_JSON', message: 'each line must be a JSON object' });
        continue;
      }
      const object = value as Record<string, unknown>;
      const row = buildEventRow((field) => object[field], line, timeUnit);
      if (isBadLine(row)) bad.push(row);
      else rows.push(row);
    }
    yield { rows, bad, bytesRead: batch.bytesRead, linesRead: batch.firstLine + batch.lines.length - 1 };
  }
}
