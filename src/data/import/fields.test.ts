import { describe, expect, it } from 'vitest';
import { EventTypeRegistry, normaliseEventType } from './event-types.js';
import { FieldError, parseExternalId, parseOptionalNumber, parseOptionalQuantity, parseTimestamp } from './fields.js';

const code = (value: unknown): string | undefined => (value instanceof FieldError ? value.code : undefined);

describe('parseTimestamp', () => {
  it.each([
    ['2024-03-05T06:07:08Z', Date.UTC(2024, 2, 5, 6, 7, 8)],
    ['2024-03-05T06:07:08.123Z', Date.UTC(2024, 2, 5, 6, 7, 8, 123)],
    ['2024-03-05T06:07:08.123456Z', Date.UTC(2024, 2, 5, 6, 7, 8, 123)],
    ['2024-03-05 06:07:08', Date.UTC(2024, 2, 5, 6, 7, 8)],
    ['2024-03-05T06:07', Date.UTC(2024, 2, 5, 6, 7)],
    ['2024-03-05', Date.UTC(2024, 2, 5)],
    ['2024-03-05T06:07:08+02:00', Date.UTC(2024, 2, 5, 4, 7, 8)],
    ['2024-03-05T06:07:08-0130', Date.UTC(2024, 2, 5, 7, 37, 8)],
    ['2024-03-05T06:07:08+05', Date.UTC(2024, 2, 5, 1, 7, 8)],
    ['1700000000', 1_700_000_000_000],
    ['1700000000.5', 1_700_000_000_500],
    ['1700000000123', 1_700_000_000_123],
    [1700000000, 1_700_000_000_000],
  ])('%j', (raw, ms) => {
    expect(parseTimestamp(raw)).toBe(ms);
  });

  it('honours an explicit unit', () => {
    expect(parseTimestamp('1000', 'ms')).toBe(1000);
    expect(parseTimestamp('1700000000123', 's')).toBeInstanceOf(FieldError); // year 55 000
  });

  it.each(['yesterday', '12/03/2024', '2024-13-01', '2024-02-30', '2024-03-05T25:00:00Z', '1e5', 'NaN', '-5'])('rejects %j', (raw) => {
    expect(code(parseTimestamp(raw))).toBe('BAD_TIMESTAMP');
  });

  it('says when it is missing', () => {
    expect(code(parseTimestamp(''))).toBe('MISSING_TIMESTAMP');
    expect(code(parseTimestamp(undefined))).toBe('MISSING_TIMESTAMP');
  });
});

describe('parseExternalId', () => {
  it('trims strings, stringifies integers, treats empty as absent', () => {
    expect(parseExternalId(' u1 ', 'user_id')).toBe('u1');
    expect(parseExternalId(42, 'user_id')).toBe('42');
    expect(parseExternalId('', 'user_id')).toBeNull();
    expect(parseExternalId(undefined, 'user_id')).toBeNull();
  });
  it('rejects non-scalar, oversize and control-character ids', () => {
    expect(code(parseExternalId(1.5, 'item_id'))).toBe('BAD_ID');
    expect(code(parseExternalId({}, 'item_id'))).toBe('BAD_ID');
    expect(code(parseExternalId('x'.repeat(257), 'item_id'))).toBe('BAD_ID');
    expect(code(parseExternalId('a\tb', 'item_id'))).toBe('BAD_ID');
  });
});

describe('numbers', () => {
  it('parses optional values and quantities', () => {
    expect(parseOptionalNumber('19.99', 'value')).toBe(19.99);
    expect(parseOptionalNumber('', 'value')).toBeNull();
    expect(code(parseOptionalNumber('abc', 'value'))).toBe('BAD_NUMBER');
    expect(code(parseOptionalNumber('Infinity', 'value'))).toBe('BAD_NUMBER');
    expect(parseOptionalQuantity('3')).toBe(3);
    expect(code(parseOptionalQuantity('0'))).toBe('BAD_NUMBER');
    expect(code(parseOptionalQuantity('1.5'))).toBe('BAD_NUMBER');
  });
});

describe('event types', () => {
  it('normalises case and aliases', () => {
    expect(normaliseEventType(' View ')).toBe('view');
    expect(normaliseEventType('addtocart')).toBe('cart');
    expect(normaliseEventType('transaction')).toBe('purchase');
    expect(normaliseEventType('wishlist')).toBe('wishlist');
    expect(code(normaliseEventType('9lives'))).toBe('BAD_EVENT_TYPE');
    expect(code(normaliseEventType(''))).toBe('MISSING_EVENT_TYPE');
  });

  it('registers new types with the next id under the register policy', () => {
    const registry = new EventTypeRegistry(new Map([['view', 1], ['cart', 2], ['purchase', 3]]), 'register');
    expect(registry.resolve('cart')).toBe(2);
    expect(registry.resolve('wishlist')).toBe(4);
    expect(registry.resolve('wishlist')).toBe(4);
    expect(registry.resolve('share')).toBe(5);
    expect(registry.takeAdded()).toEqual([{ id: 4, name: 'wishlist' }, { id: 5, name: 'share' }]);
    expect(registry.takeAdded()).toEqual([]);
    expect(registry.registeredNames).toEqual(['wishlist', 'share']);
  });

  it('rejects unknown types under the strict policy, naming the known ones', () => {
    const registry = new EventTypeRegistry(new Map([['view', 1]]), 'strict');
    const result = registry.resolve('wishlist');
    expect(code(result)).toBe('UNKNOWN_EVENT_TYPE');
    expect((result as FieldError).message).toContain('known: view');
  });
});
