/**
 * Splits one CSV record (RFC 4180: comma separated, fields optionally quoted,
 * `""` for a quote inside quotes). Returns null when the text ends inside a
 * quoted field: the record continues on the next physical line.
 */
export function splitCsvRecord(text: string, delimiter = ','): string[] | null {
  if (text.indexOf('"') === -1) return text.split(delimiter);
  const fields: string[] = [];
  let i = 0;
  const n = text.length;
  for (;;) {
    if (text[i] === '"') {
      let value = '';
      let j = i + 1;
      for (;;) {
        const q = text.indexOf('"', j);
        if (q === -1) return null;
        value += text.slice(j, q);
        if (text[q + 1] === '"') {
          value += '"';
          j = q + 2;
          continue;
        }
        i = q + 1;
        break;
      }
      // Anything between the closing quote and the delimiter is kept, as most readers do.
      const end = text.indexOf(delimiter, i);
      if (end === -1) {
        fields.push(value + text.slice(i));
        return fields;
      }
      fields.push(value + text.slice(i, end));
      i = end + 1;
    } else {
      const end = text.indexOf(delimiter, i);
      if (end === -1) {
        fields.push(text.slice(i));
        return fields;
      }
      fields.push(text.slice(i, end));
      i = end + 1;
    }
    if (i > n) return fields;
  }
}

/** Joins physical lines into CSV records, tracking the line each record starts on. */
export class CsvRecordAssembler {
  private pending: string | null = null;
  private pendingLine = 0;

  constructor(private readonly delimiter = ',') {}

  /** Feeds one physical line; returns the record it completes, or null if the record continues. */
  push(line: string, lineNo: number): { fields: string[]; line: number } | null {
    const text = this.pending === null ? line : `${this.pending}\n${line}`;
    const start = this.pending === null ? lineNo : this.pendingLine;
    const fields = splitCsvRecord(text, this.delimiter);
    if (fields === null) {
      this.pending = text;
      this.pendingLine = start;
      return null;
    }
    this.pending = null;
    return { fields, line: start };
  }

  /** The line of a record left open at the end of the file, if any. */
  unterminatedLine(): number | null {
    return this.pending === null ? null : this.pendingLine;
  }
}
