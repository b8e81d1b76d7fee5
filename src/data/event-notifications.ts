import pg from 'pg';

/**
 * Stored events, announced to every process on the same PostgreSQL database
 * (LISTEN/NOTIFY), so replicas of the API drop the cached state of a shopper
 * whose history another replica just changed. The notification is sent
 * inside the transaction that stores the events: PostgreSQL delivers it at
 * COMMIT, and never for a transaction that rolled back. SQLite stores are
 * single-process and have no channel.
 */
export const EVENTS_CHANNEL = 'attnrec_events';

/** PostgreSQL refuses a payload of 8,000 bytes or more; stay below with room for the envelope. */
const MAX_PAYLOAD_BYTES = 7_900;

export interface EventsNotice {
  /** The process that stored the events (a replica ignores its own). */
  readonly from: string;
  /** External ids of the users whose histories changed. */
  readonly users: readonly string[];
}

/** The notices that announce these users, each payload under PostgreSQL's limit (one user per notice at worst). */
export function eventNoticePayloads(from: string, users: readonly string[]): string[] {
  const payloads: string[] = [];
  let batch: string[] = [];
  let bytes = 0;
  const envelope = Buffer.byteLength(JSON.stringify({ from, users: [] }));
  for (const user of users) {
    const size = Buffer.byteLength(JSON.stringify(user)) + 1;
    if (batch.length > 0 && envelope + bytes + size > MAX_PAYLOAD_BYTES) {
      payloads.push(JSON.stringify({ from, users: batch }));
      batch = [];
      bytes = 0;
    }
    batch.push(user);
    bytes += size;
  }
  if (batch.length > 0) payloads.push(JSON.stringify({ from, users: batch }));
  return payloads;
}

/** Parses a payload; undefined for anything that is not a notice (another program on the channel). */
export function parseEventNotice(payload: string | undefined): EventsNotice | undefined {
  try {
    const value = JSON.parse(payload ?? '') as unknown;
    if (typeof value !== 'object' || value === null) return undefined;
    const { from, users } = value as { from?: unknown; users?: unknown };
    if (typeof from !== 'string' || !Array.isArray(users) || !users.every((u) => typeof u === 'string')) return undefined;
    return { from, users: users as string[] };
  } catch {
    return undefined;
  }
}

export interface EventsListener {
  close(): Promise<void>;
}

export interface ListenOptions {
  readonly onNotice: (notice: EventsNotice) => void;
  /**
   * The connection was lost and is back: notices sent meanwhile are gone, so
   * whatever they would have invalidated must be assumed stale.
   */
  readonly onGap: () => void;
  readonly log: (message: string, error?: unknown) => void;
  /** First reconnection delay; doubles up to maxRetryMs. */
  readonly retryMs?: number;
  readonly maxRetryMs?: number;
}

/**
 * Listens on the events channel on a connection of its own (a pooled one
 * would be returned and lose the LISTEN), reconnecting with backoff after
 * a failure. Resolves once listening.
 */
export async function listenForEvents(url: string, options: ListenOptions): Promise<EventsListener> {
  let client: pg.Client | undefined;
  let closed = false;
  let retry = options.retryMs ?? 250;
  let timer: NodeJS.Timeout | undefined;

  const connect = async (): Promise<void> => {
    const c = new pg.Client({ connectionString: url });
    c.on('notification', (message) => {
      if (message.channel !== EVENTS_CHANNEL) return;
      const notice = parseEventNotice(message.payload);
      if (notice) options.onNotice(notice);
    });
    c.on('error', () => lost(c));
    c.on('end', () => lost(c));
    await c.connect();
    await c.query(`LISTEN ${EVENTS_CHANNEL}`);
    client = c;
  };

  const lost = (c: pg.Client): void => {
    if (closed || client !== c) return;
    client = undefined;
    void c.end().catch(() => {});
    options.log('lost the database connection that listens for other replicas\' events; reconnecting');
    schedule();
  };

  const schedule = (): void => {
    timer = setTimeout(() => {
      connect().then(
        () => {
          retry = options.retryMs ?? 250;
          options.log('listening for other replicas\' events again; cached users were dropped');
          options.onGap();
        },
        (error: unknown) => {
          if (closed) return;
          options.log('cannot listen for other replicas\' events yet', error);
          retry = Math.min(retry * 2, options.maxRetryMs ?? 5_000);
          schedule();
        },
      );
    }, retry);
    timer.unref();
  };

  await connect();
  return {
    async close() {
      closed = true;
      clearTimeout(timer);
      const c = client;
      client = undefined;
      await c?.end().catch(() => {});
    },
  };
}
