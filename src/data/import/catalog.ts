import { AppError } from '../../errors.js';
import { propertiesProblem, type ItemProperties } from '../item-properties.js';
import { CsvRecordAssembler } from './csv.js';
import type { BadLine } from './event-row.js';
import { FieldError, parseExternalId, parseOptionalNumber } from './fields.js';
import { readLineBatches } from './line-reader.js';
import { mapHeader } from './sources.js';

/**
 * One row of an item catalogue. A field is `undefined` when its column is not
 * in the file: an update then leaves that attribute as it is.
 */
export interface CatalogRow {
  readonly line: number;
  readonly externalId: string;
  readonly title?: string | null;
  readonly category?: string | null;
  readonly price?: number | null;
  readonly active?: boolean;
  /** The item's properties: a JSON object in the `properties` column (empty: none). */
  readonly properties?: ItemProperties | null;
}

export const CATALOG_COLUMNS = ['item_id', 'title', 'category', 'price', 'active', 'properties'] as const;

const TRUE = new Set(['1', 'true', 'yes', 'y', 't']);
const FALSE = new Set(['0', 'false', 'no', 'n', 'f']);

/** Reads a whole item catalogue CSV (catalogues are small next to event logs). */
export async function readCatalog(path: string, delimiter = path.toLowerCase().endsWith('.tsv') ? '\t' : ','): Promise<{ rows: CatalogRow[]; bad: BadLine[] }> {
  const assembler = new CsvRecordAssembler(delimiter);
  let index: Map<string, number> | undefined;
  let width = 0;
  const rows: CatalogRow[] = [];
  const bad: BadLine[] = [];
  for await (const batch of readLineBatches(path)) {
    for (let i = 0; i < batch.lines.length; i++) {
      const record = assembler.push(batch.lines[i]!, batch.firstLine + i);
      if (record === null) continue;
      if (index === undefined) {
        index = mapHeader(path, record.fields, [['item_id']], CATALOG_COLUMNS).index;
        width = record.fields.length;
        continue;
      }
      if (record.fields.length === 1 && record.fields[0]!.trim() === '') continue;
      if (record.fields.length !== width) {
        bad.push({ line: record.line, code: 'BAD_FIELD_COUNT', message: `expected ${width} fields as in the header, found ${record.fields.length}` });
        continue;
      }
      const row = catalogRow(record.fields, index, record.line);
      if ('code' in row) bad.push(row);
      else rows.push(row);
    }
  }
  if (index === undefined) throw new AppError('IMPORT_BAD_HEADER', `${path}: the file is empty; the first line must be a header`, { file: path, line: 1 });
  const open = assembler.unterminatedLine();
  if (open !== null) bad.push({ line: open, code: 'UNTERMINATED_QUOTE', message: 'a quoted field is never closed' });
  return { rows, bad };
}

function catalogRow(fields: string[], index: Map<string, number>, line: number): CatalogRow | BadLine {
  const field = (name: string): string | undefined => {
    const i = index.get(name);
    return i === undefined ? undefined : fields[i];
  };
  const id = parseExternalId(field('item_id'), 'item_id');
  if (id instanceof FieldError) return { line, code: id.code, message: id.message };
  if (id === null) return { line, code: 'MISSING_ITEM', message: 'item_id is empty' };
  const text = (name: string): string | null | undefined => {
    const raw = field(name);
    if (raw === undefined) return undefined;
    const trimmed = raw.trim();
    return trimmed === '' ? null : trimmed;
  };
  let price: number | null | undefined;
  if (index.has('price')) {
    const parsed = parseOptionalNumber(field('price'), 'price');
    if (parsed instanceof FieldError) return { line, code: parsed.code, message: parsed.message };
    if (parsed !== null && parsed < 0) return { line, code: 'BAD_NUMBER', message: `price ${parsed} is negative` };
    price = parsed;
  }
  let active: boolean | undefined;
  const rawActive = text('active');
  if (rawActive !== undefined && rawActive !== null) {
    const lower = rawActive.toLowerCase();
    if (TRUE.has(lower)) active = true;
    else if (FALSE.has(lower)) active = false;
    else return { line, code: 'BAD_BOOLEAN', message: `active '${rawActive}' is not true/false` };
  }
  let properties: ItemProperties | null | undefined;
  const rawProperties = text('properties');
  if (rawProperties !== undefined && rawProperties !== null) {
    let parsed: unknown;
    try {
      parsed = JSON.parse(rawProperties);
    } catch (error) {
      return { line, code: 'BAD_PROPERTIES', message: `properties is not JSON: ${(error as Error).message}` };
    }
    const problem = propertiesProblem(parsed);
    if (problem) return { line, code: 'BAD_PROPERTIES', message: problem };
    properties = parsed as ItemProperties;
  } else if (rawProperties === null) properties = null;
  return { line, externalId: id, title: text('title'), category: text('category'), price, active, properties };
}
