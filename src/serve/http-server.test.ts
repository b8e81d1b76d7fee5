import { IncomingMessage, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import express from 'express';
import { afterEach, describe, expect, it } from 'vitest';
import { createExpressServer } from './http-server.js';

describe('createExpressServer', () => {
  let close: (() => Promise<void>) | undefined;
  afterEach(async () => {
    await close?.();
    close = undefined;
  });

  const start = async (app: express.Express) => {
    const server = createExpressServer(app);
    const born: { request?: object; response?: object } = {};
    // Runs before Express's handler: the prototypes the objects were born with.
    server.prependListener('request', (req: IncomingMessage, res: ServerResponse) => {
      born.request = Object.getPrototypeOf(req) as object;
      born.response = Object.getPrototypeOf(res) as object;
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    close = () => new Promise((resolve) => server.close(() => resolve()));
    return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, born };
  };

  it("gives requests and responses Express's prototypes at birth, so app.handle changes none", async () => {
    const app = express();
    const { url, born } = await start(app);
    await fetch(`${url}/`);
    expect(born.request).toBe(app.request);
    expect(born.response).toBe(app.response);
    expect(app.request).toBeInstanceOf(IncomingMessage);
    expect(app.response).toBeInstanceOf(ServerResponse);
  });

  it("keeps Express's request and response behaviour: params, query, headers, body parsing, status, json", async () => {
    const app = express();
    app.set('query parser', 'simple');
    app.use(express.json());
    const router = express.Router();
    router.post('/things/:id', (req, res) => {
      res.status(201).set('X-Seen', req.get('x-probe') ?? 'none').json({ id: req.params.id, q: req.query.q, body: req.body as unknown, app: req.app === app, xhr: req.xhr, path: req.path });
    });
    app.use('/v1', router);
    const { url } = await start(app);
    const response = await fetch(`${url}/v1/things/7?q=a`, { method: 'POST', headers: { 'content-type': 'application/json', 'x-probe': 'p' }, body: JSON.stringify({ n: 1 }) });
    expect(response.status).toBe(201);
    expect(response.headers.get('x-seen')).toBe('p');
    expect(response.headers.get('content-type')).toMatch(/^application\/json/);
    expect(await response.json()).toEqual({ id: '7', q: 'a', body: { n: 1 }, app: true, xhr: false, path: '/things/7' });
  });

  it('refuses an Express whose prototype chain it does not know, rather than serve with a wrong one', () => {
    const app = express();
    app.request = Object.create(app.request) as typeof app.request;
    expect(() => createExpressServer(app)).toThrow(/prototype chain/);
  });
});
