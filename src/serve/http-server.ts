import { IncomingMessage, ServerResponse, createServer, type Server } from 'node:http';
import type { Express } from 'express';

/**
 * The HTTP server for an Express app, with requests and responses born with
 * Express's prototypes instead of given them afterwards.
 *
 * Express's `app.handle` runs `Object.setPrototypeOf(req, app.request)` (and
 * the same for `res`) on every request. Objects whose prototype is set that
 * way, or is one of Express's `Object.create`d prototypes, survive V8's
 * scavenges: every request's objects were promoted to the old generation,
 * scavenges took 4-17 ms and a mark-compact ran every ~3 s. Here `req` and
 * `res` are instances of classes extending Node's `IncomingMessage` and
 * `ServerResponse` whose prototypes carry Express's request and response
 * properties, and `app.request` / `app.response` are those prototypes, so the
 * `setPrototypeOf` in `app.handle` finds the prototype already in place and
 * changes nothing. Express's behaviour is unchanged: the same properties on
 * the same chain, one level closer.
 *
 * Measured with `npx tsx bench/http-floor.ts` (1,000 req/s of GETs on
 * loopback, 16 keep-alive connections, 2 × 15 s, the load generator on the
 * same 2 cores), p99 and the server's GC over the 30 s:
 *   - plain `node:http`: 3.1 / 4.0 ms; scavenges median 0.6 ms, no mark-compact;
 *   - an Express app (one router, `express.json()`, `res.json`) on `app.listen`:
 *     13.1 / 15.7 ms; scavenges median 5.1 ms, p90 14.5 ms, 10 mark-compacts,
 *     845 ms paused in all;
 *   - the same app through this server: 3.8 / 4.5 ms; scavenges median 0.75 ms,
 *     no mark-compact, 68 ms paused.
 * The attnrec server under `bench/latency-probe.ts --seconds 20` (two runs
 * each, against the commit before): the event loop's scavenges 780-800 ms
 * in all instead of 1,482, 3 mark-compacts instead of 9; p99 of the 250 req/s
 * mix 27-30 ms instead of 44-47. See docs/serving-performance.md.
 */
export function createExpressServer(app: Express): Server<typeof IncomingMessage, typeof ServerResponse> {
  const Request = bornWith(IncomingMessage, app.request);
  const Response = bornWith(ServerResponse, app.response);
  app.request = Request.prototype as Express['request']; // it holds Express's request properties (bornWith)
  app.response = Response.prototype as Express['response'];
  return createServer({ IncomingMessage: Request, ServerResponse: Response }, app);
}

/**
 * A subclass of `base` whose prototype holds `expressPrototype`'s own
 * properties and those of its parent (Express's shared request or response
 * object), in that order of precedence: the chain Express builds with
 * `Object.create`, flattened into a class prototype.
 */
function bornWith<T extends typeof IncomingMessage | typeof ServerResponse>(base: T, expressPrototype: object): T {
  const born = class extends (base as typeof IncomingMessage) {} as unknown as T;
  const shared = Object.getPrototypeOf(expressPrototype) as object;
  if (Object.getPrototypeOf(shared) !== base.prototype) {
    throw new Error(`Express's ${base.name} prototype chain is not the one createExpressServer expects`);
  }
  Object.defineProperties(born.prototype, Object.getOwnPropertyDescriptors(shared));
  Object.defineProperties(born.prototype, Object.getOwnPropertyDescriptors(expressPrototype));
  return born;
}
