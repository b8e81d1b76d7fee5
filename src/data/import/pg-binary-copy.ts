import type { ResolvedEvents } from './import-target.js';

/**
 * Encodes events in PostgreSQL's binary COPY format for the staging table
 * (user_id int4, session_id int4, item_id int4, type_id int4, ts_ms int8,
 * value float8, quantity int4, event_id text, recommendation_id text). Writing fixed-width integers
 * into one buffer costs a fraction of building text rows, and the server
 * skips parsing numbers: both sides of a 2-core machine get time back.
 *
 * Format: 11-byte signature, int32 flags, int32 extension length; per row an
 * int16 field count, then per field an int32 byte length (-1 = NULL) and the
 * big-endian value; an int16 -1 trailer.
 */
const SIGNATURE = Buffer.from('PGCOPY\n\xff\r\n\0', 'latin1');
const FIELDS = 9;

export function encodeStagingCopy(e: ResolvedEvents): Buffer {
  // Per row: count (2) + 9 length words (36) + 4 int4 (16) + int8 (8) + float8 (8) + int4 (4) + event id and recommendation id bytes.
  let size = SIGNATURE.length + 8 + 2;
  const eventIds: (Buffer | null)[] = new Array(e.count);
  for (let i = 0; i < e.count; i++) {
    const id = e.eventId[i];
    const bytes = id == null ? null : Buffer.from(id, 'utf8');
    eventIds[i] = bytes;
    const recommendation = e.recommendationId[i];
    // A UUID is ASCII: its length in bytes is its length in characters.
    size += 74 + (bytes?.length ?? 0) + (recommendation == null ? 0 : recommendation.length);
  }
  const out = Buffer.allocUnsafe(size);
  // DataView writes are big-endian by default and several times cheaper than Buffer's checked helpers.
  const view = new DataView(out.buffer, out.byteOffset, out.byteLength);
  let at = SIGNATURE.copy(out, 0);
  view.setInt32(at, 0);
  view.setInt32(at + 4, 0);
  at += 8;
  for (let i = 0; i < e.count; i++) {
    view.setInt16(at, FIELDS);
    at += 2;
    at = int4OrNull(view, at, e.userId[i]!);
    at = int4OrNull(view, at, e.sessionId[i]!);
    at = int4(view, at, e.itemId[i]!);
    at = int4(view, at, e.typeId[i]!);
    view.setInt32(at, 8);
    view.setBigInt64(at + 4, BigInt(e.ts[i]!));
    at += 12;
    const value = e.value[i]!;
    if (Number.isNaN(value)) {
      view.setInt32(at, -1);
      at += 4;
    } else {
      view.setInt32(at, 8);
      view.setFloat64(at + 4, value);
      at += 12;
    }
    at = int4OrNull(view, at, e.quantity[i]!);
    const id = eventIds[i];
    if (id == null) {
      view.setInt32(at, -1);
      at += 4;
    } else {
      view.setInt32(at, id.length);
      at += 4 + id.copy(out, at + 4);
    }
    const recommendation = e.recommendationId[i];
    if (recommendation == null) {
      view.setInt32(at, -1);
      at += 4;
    } else {
      view.setInt32(at, recommendation.length);
      at += 4 + out.write(recommendation, at + 4, 'latin1');
    }
  }
  view.setInt16(at, -1);
  return out.subarray(0, at + 2);
}

function int4(view: DataView, at: number, value: number): number {
  view.setInt32(at, 4);
  view.setInt32(at + 4, value);
  return at + 8;
}

/** 0 encodes NULL: ids and quantities are positive. */
function int4OrNull(view: DataView, at: number, value: number): number {
  if (value !== 0) return int4(view, at, value);
  view.setInt32(at, -1);
  return at + 4;
}
