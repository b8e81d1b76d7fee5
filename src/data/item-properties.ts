/**
 * An item's properties: one JSON object per item (brand, stock, margin, tags,
 * ...), set through PUT /v1/items and the catalogue import and read by the
 * filter and boost rules (src/data/item-rules/). Values are any JSON; the
 * rules compare strings, numbers and booleans, and an array matches when any
 * of its elements does.
 */
// Mutable in type only, as zod's JSON type is (the API's schemas); nothing writes to a catalogue item's properties.
export type JsonValue = string | number | boolean | null | JsonValue[] | { [key: string]: JsonValue };
export type ItemProperties = { [key: string]: JsonValue };

/** Largest properties object accepted, serialised (a catalogue of 100,000 items then holds at most ~400 MB of them; most hold far less). */
export const MAX_PROPERTIES_BYTES = 4_096;
/** Longest property name. */
export const MAX_PROPERTY_NAME = 100;

/**
 * Why `value` cannot be an item's properties, or undefined when it can: a
 * JSON object (not an array), names of 1-MAX_PROPERTY_NAME characters, at
 * most MAX_PROPERTIES_BYTES serialised.
 */
export function propertiesProblem(value: unknown): string | undefined {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return 'properties must be a JSON object';
  for (const name of Object.keys(value)) {
    if (name.length === 0 || name.length > MAX_PROPERTY_NAME) return `property names must be 1-${MAX_PROPERTY_NAME} characters; got '${name.slice(0, 40)}'`;
  }
  const bytes = Buffer.byteLength(JSON.stringify(value));
  if (bytes > MAX_PROPERTIES_BYTES) return `properties must be at most ${MAX_PROPERTIES_BYTES} bytes as JSON; got ${bytes}`;
  return undefined;
}

/** The properties column as read from the store: SQLite gives JSON text, PostgreSQL the parsed object. */
export function readProperties(column: unknown): ItemProperties | null {
  if (column === null || column === undefined) return null;
  const value: unknown = typeof column === 'string' ? JSON.parse(column) : column;
  return typeof value === 'object' && value !== null && !Array.isArray(value) ? (value as ItemProperties) : null;
}
