/**
 * The proxy client against a local HTTP server that holds requests: the in-flight bounds per
 * connection (111) and per node (114), the signature of the raw body, and the answer mapping.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { verifySignature } from '../src/backend-http/signed-post.js';
import { resolveOptions } from '../src/config/options.js';
import { HubError } from '../src/protocol/errors.js';
import { ProxyClient } from '../src/proxy/proxy-client.js';
import { waitFor } from './support/processes.js';

const SECRET = 'proxy-client-secret-0123456789';
let server: Server;
let base: string;
const held: ServerResponse[] = [];
let answer: (req: IncomingMessage, body: string, res: ServerResponse) => void;

beforeAll(async () => {
  server = createServer((req, res) => {
    let body = '';
    req.on('data', (d: Buffer) => (body += d.toString()));
    req.on('end', () => answer(req, body, res));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});

afterAll(async () => {
  for (const res of held) res.destroy();
  server.closeAllConnections();
  await new Promise((r) => server.close(r));
});

function client(extra: Record<string, unknown> = {}): { proxy: ProxyClient; endpoint: ReturnType<typeof resolveOptions>['proxy'] } {
  const options = resolveOptions({ auth: { allowAnonymous: true }, proxy: { secret: SECRET, rpc: { url: `${base}/rpc`, timeoutMs: 20_000 }, ...extra } });
  return { proxy: new ProxyClient(options.proxy!, pino({ level: 'silent' })), endpoint: options.proxy };
}

const request = { client: 'c1', transport: 'websocket' as const, headers: {} };

describe('proxy client', () => {
  it('bounds requests in flight per connection (111) and per node (114), and frees the slots', async () => {
    answer = (_req, _body, res) => held.push(res);
    const { proxy, endpoint } = client({ maxInFlightPerConnection: 2, maxInFlight: 3 });
    const rpc = endpoint!.rpc!;
    const a = proxy.call('rpc', rpc, 'c1', request);
    const b = proxy.call('rpc', rpc, 'c1', request);
    await expect(proxy.call('rpc', rpc, 'c1', request)).rejects.toMatchObject({ code: 111, temporary: true });
    const c = proxy.call('rpc', rpc, 'c2', request);
    await expect(proxy.call('rpc', rpc, 'c3', request)).rejects.toMatchObject({ code: 114, temporary: true });
    await waitFor(() => held.length === 3, 'the three requests at the backend');
    for (const res of held.splice(0)) res.writeHead(200).end('{"result":{"data":1}}');
    expect(await Promise.all([a, b, c])).toEqual([{ data: 1 }, { data: 1 }, { data: 1 }]);
    answer = (_req, _body, res) => res.writeHead(200).end('{"result":{}}');
    expect(await proxy.call('rpc', rpc, 'c1', request)).toEqual({});
    expect(proxy.stats.status()).toMatchObject({ inFlight: 0, calls: 6, errors: { limited: 2 }, byKind: { rpc: { calls: 6, errors: 2 } } });
  });

  it('signs the raw body and maps every kind of answer', async () => {
    const { proxy, endpoint } = client();
    const rpc = endpoint!.rpc!;
    let signedOk = false;
    const reply = (status: number, text: string) => (req: IncomingMessage, body: string, res: ServerResponse) => {
      signedOk = verifySignature(body, SECRET, req.headers['x-switchboard-signature'] as string);
      res.writeHead(status).end(text);
    };
    answer = reply(200, '{"error":{"code":1500,"message":"nope","temporary":true}}');
    await expect(proxy.call('rpc', rpc, 'c1', request)).rejects.toMatchObject({ code: 1500, message: 'nope', temporary: true });
    expect(signedOk).toBe(true);
    answer = reply(200, '{"error":{"code":42,"message":"low"}}');
    await expect(proxy.call('rpc', rpc, 'c1', request)).rejects.toMatchObject({ code: 116, message: 'low', temporary: false });
    answer = reply(403, 'forbidden');
    await expect(proxy.call('rpc', rpc, 'c1', request)).rejects.toMatchObject({ code: 116, temporary: false });
    answer = reply(502, '');
    await expect(proxy.call('rpc', rpc, 'c1', request)).rejects.toMatchObject({ code: 114, temporary: true });
    answer = reply(200, 'not json');
    await expect(proxy.call('rpc', rpc, 'c1', request)).rejects.toMatchObject({ code: 117 });
    answer = reply(200, '{"result":[1]}');
    await expect(proxy.call('rpc', rpc, 'c1', request)).rejects.toMatchObject({ code: 117 });
    answer = reply(200, '{"error":"text"}');
    await expect(proxy.call('rpc', rpc, 'c1', request)).rejects.toMatchObject({ code: 117 });
    answer = reply(200, '{"result":{"user":7}}');
    const parse = (result: Record<string, unknown>): string => {
      if (typeof result.user !== 'string') throw new HubError(117, 'user is not a string');
      return result.user;
    };
    await expect(proxy.call('connect', rpc, 'c1', request, parse)).rejects.toMatchObject({ code: 117 });
    // Each answer counts under the outcome its mapping gave (a result of the wrong shape is invalid).
    expect(proxy.stats.status()).toEqual({
      inFlight: 0,
      calls: 8,
      errors: { timeout: 0, unavailable: 0, http_5xx: 1, refused: 3, invalid: 4, limited: 0 },
      byKind: { rpc: { calls: 7, errors: 7 }, connect: { calls: 1, errors: 1 } },
    });
  });

  it('counts a timeout and an unreachable backend apart', async () => {
    answer = (_req, _body, res) => held.push(res);
    const { proxy, endpoint } = client({ rpc: { url: `${base}/rpc`, timeoutMs: 100 }, subscribe: { url: 'http://127.0.0.1:1/subscribe', timeoutMs: 1_000 } });
    await expect(proxy.call('rpc', endpoint!.rpc!, 'c1', request)).rejects.toMatchObject({ code: 114, message: 'backend rpc timed out' });
    await expect(proxy.call('subscribe', endpoint!.subscribe!, 'c1', request)).rejects.toMatchObject({ code: 114, message: 'backend subscribe unreachable' });
    for (const res of held.splice(0)) res.destroy();
    expect(proxy.stats.status().errors).toMatchObject({ timeout: 1, unavailable: 1 });
  });
});
