import type { Prisma } from '../../generated/prisma/sqlite/client.js';

/**
 * A value as Prisma stores it in a Json column: plain JSON, no undefined, no
 * class instances, no NaN (JSON.stringify writes null for it). The round trip
 * makes what is stored exactly what will be read back.
 */
export function toJsonValue(value: unknown): Prisma.InputJsonValue {
  return JSON.parse(JSON.stringify(value)) as Prisma.InputJsonValue;
}
