import type { Response } from 'express';
import { describe, expect, it } from 'vitest';
import { ItemSchema, reply } from './responses.js';

describe('reply', () => {
  const fakeResponse = (): { res: Response; sent: unknown[] } => {
    const sent: unknown[] = [];
    const res = { req: { method: 'GET', originalUrl: '/v1/items/a' }, json: (body: unknown) => sent.push(body) } as unknown as Response;
    return { res, sent };
  };
  const item = { id: 'a', title: null, category: 'c', price: 1, active: true, properties: null, inModel: false };

  it('sends a body that matches its schema', () => {
    const { res, sent } = fakeResponse();
    reply(res, ItemSchema, item);
    expect(sent).toEqual([item]);
  });

  it('refuses, under the suite, a body with a field the document does not describe', () => {
    expect(process.env.ATTNREC_CHECK_RESPONSES).toBe('1');
    const { res, sent } = fakeResponse();
    expect(() => reply(res, ItemSchema, { ...item, margin: 0.3 } as typeof item)).toThrow(/does not match its schema/);
    expect(() => reply(res, ItemSchema, { ...item, price: 'cheap' } as unknown as typeof item)).toThrow(/price/);
    expect(sent).toEqual([]);
  });
});
