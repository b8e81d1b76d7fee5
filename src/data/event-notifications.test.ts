import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { postgresAvailable, scratchStore } from '../../test/support/test-stores.js';
import { TcpProxy } from '../../test/support/tcp-proxy.js';
import { EVENTS_CHANNEL, eventNoticePayloads, listenForEvents, parseEventNotice, type EventsNotice } from './event-notifications.js';
import type { Store } from './store.js';
import { until } from '../../test/support/until.js';

describe('events notices', () => {
  it('split many users into payloads under PostgreSQL’s 8,000-byte limit, each user once', () => {
    const users = Array.from({ length: 3_000 }, (_, i) => `user-${i}-${'é'.repeat(i % 7)}`);
    const payloads = eventNoticePayloads('replica-a', users);
    expect(payloads.length).toBeGreaterThan(1);
    const seen: string[] = [];
    for (const payload of payloads) {
      expect(Buffer.byteLength(payload)).toBeLessThan(8_000);
      const notice = parseEventNotice(payload)!;
      expect(notice.from).toBe('replica-a');
      seen.push(...notice.users);
    }
    expect(seen).toEqual(users);
    expect(eventNoticePayloads('a', [])).toEqual([]);
  });

  it('ignore payloads that are not notices', () => {
    for (const payload of [undefined, '', 'hello', '[]', '{"from":1,"users":[]}', '{"from":"a","users":[1]}', '{"from":"a"}']) expect(parseEventNotice(payload)).toBeUndefined();
  });
});

describe.skipIf(!postgresAvailable())('listening for events notices [postgresql]', () => {
  let store: Store & { dispose(): Promise<void> };
  beforeAll(async () => {
    store = await scratchStore('postgresql');
  });
  afterAll(async () => {
    await store?.dispose();
  });

  const notify = async (users: string[]): Promise<void> => {
    if (store.provider !== 'postgresql') throw new Error('postgresql only');
    for (const payload of eventNoticePayloads('writer', users)) await store.pool.query('SELECT pg_notify($1, $2)', [EVENTS_CHANNEL, payload]);
  };

  it('delivers committed notices, none from a rolled-back transaction, and reports a gap after a lost connection', async () => {
    if (store.provider !== 'postgresql') throw new Error('postgresql only');
    const url = new URL(store.target.url);
    const proxy = await TcpProxy.start(Number(url.port));
    url.port = String(proxy.port);
    const notices: EventsNotice[] = [];
    let gaps = 0;
    const listener = await listenForEvents(url.toString(), { onNotice: (n) => notices.push(n), onGap: () => gaps++, log: () => {}, retryMs: 50, maxRetryMs: 200 });
    try {
      await notify(['u1', 'u2']);
      await until(() => notices.length === 1);
      expect(notices[0]).toEqual({ from: 'writer', users: ['u1', 'u2'] });

      // A notice sent in a transaction that rolls back is never delivered.
      const client = await store.pool.connect();
      await client.query('BEGIN');
      await client.query('SELECT pg_notify($1, $2)', [EVENTS_CHANNEL, eventNoticePayloads('writer', ['rolled-back'])[0]]);
      await client.query('ROLLBACK');
      client.release();
      await notify(['u3']);
      await until(() => notices.length === 2);
      expect(notices[1]!.users).toEqual(['u3']);

      // The connection is lost, then the database is reachable again: one gap, and notices flow again.
      await proxy.cut();
      await new Promise((r) => setTimeout(r, 300));
      expect(gaps).toBe(0);
      await proxy.open();
      await until(() => gaps === 1);
      await notify(['u4']);
      await until(() => notices.length === 3);
      expect(notices[2]!.users).toEqual(['u4']);
      expect(notices.flatMap((n) => n.users)).not.toContain('rolled-back');
    } finally {
      await listener.close();
      await proxy.cut();
    }
  });
});
