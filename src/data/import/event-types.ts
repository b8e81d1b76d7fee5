import { FieldError, truncate } from './fields.js';

/** Seeded by the first migration; their ids are fixed forever. */
export const BUILTIN_EVENT_TYPES: Readonly<Record<string, number>> = { view: 1, cart: 2, purchase: 3 };
/** Event-type ids are stored as one byte in training sequences. */
export const MAX_EVENT_TYPE_ID = 255;

/** Names real logs use for the built-in types (RetailRocket, GA4, Shopify exports…). */
const ALIASES: Readonly<Record<string, string>> = {
  pageview: 'view',
  page_view: 'view',
  view_item: 'view',
  detail: 'view',
  addtocart: 'cart',
  add_to_cart: 'cart',
  'add-to-cart': 'cart',
  transaction: 'purchase',
  order: 'purchase',
  buy: 'purchase',
};

const NAME = /^[a-z][a-z0-9_.:-]{0,63}$/;

/** Lower-cases, trims and maps aliases: `AddToCart` → `cart`. */
export function normaliseEventType(raw: unknown): string | FieldError {
  if (raw === undefined || raw === null || (typeof raw === 'string' && raw.trim() === '')) {
    return new FieldError('MISSING_EVENT_TYPE', 'event_type is missing');
  }
  if (typeof raw !== 'string') return new FieldError('BAD_EVENT_TYPE', 'event_type must be a string');
  const name = raw.trim().toLowerCase();
  const canonical = ALIASES[name] ?? name;
  if (!NAME.test(canonical)) {
    return new FieldError('BAD_EVENT_TYPE', `event_type '${truncate(raw)}' must be a letter followed by up to 63 letters, digits or _ . : -`);
  }
  return canonical;
}

/**
 * What to do with an event type the database does not know yet:
 * 'register' gives it the next id (custom types such as `wishlist` are part of
 * the product); 'strict' rejects the line.
 */
export type EventTypePolicy = 'register' | 'strict';

export class EventTypeRegistry {
  private readonly ids: Map<string, number>;
  private readonly added: { id: number; name: string }[] = [];
  private readonly registered: string[] = [];
  private nextId: number;

  constructor(
    known: ReadonlyMap<string, number>,
    private readonly policy: EventTypePolicy,
  ) {
    this.ids = new Map(known);
    this.nextId = Math.max(0, ...known.values()) + 1;
  }

  /** The id of a normalised type name, registering it under the 'register' policy. */
  resolve(name: string): number | FieldError {
    const id = this.ids.get(name);
    if (id !== undefined) return id;
    if (this.policy === 'strict') {
      return new FieldError('UNKNOWN_EVENT_TYPE', `unknown event type '${name}' (known: ${[...this.ids.keys()].join(', ')}); use --event-types register to add it`);
    }
    if (this.nextId > MAX_EVENT_TYPE_ID) return new FieldError('TOO_MANY_EVENT_TYPES', `cannot add event type '${name}': ${MAX_EVENT_TYPE_ID} types is the limit`);
    const fresh = this.nextId++;
    this.ids.set(name, fresh);
    this.added.push({ id: fresh, name });
    this.registered.push(name);
    return fresh;
  }

  /** Types registered since the last call, to be written to the database. */
  takeAdded(): { id: number; name: string }[] {
    return this.added.splice(0);
  }

  /** All types registered during this import. */
  get registeredNames(): readonly string[] {
    return this.registered;
  }
}
