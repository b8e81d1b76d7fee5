import { Prisma } from '../../generated/prisma/sqlite/client.js';

/**
 * A value as Prisma stores it in a Json column: plain JSON, no undefined, no
 * class instances, no NaN (JSON.stringify writes null for it). The round trip
 * makes what is stored exactly what will be read back.
 */
export function toJsonValue(value: unknown): Prisma.InputJsonValue {
  return JSON.parse(JSON.stringify(value)) as Prisma.InputJsonValue;
}

/** What a nullable Json column is given for SQL NULL (Prisma's DbNull: the same object for both providers' clients). */
export const JSON_COLUMN_NULL = Prisma.DbNull;
