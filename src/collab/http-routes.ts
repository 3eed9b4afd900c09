import { createHash, timingSafeEqual } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import * as Y from 'yjs';
import type { ChannelResolver } from '../channels/channels.js';
import { sendError, sendJson } from '../http/respond.js';
import { HubError } from '../protocol/errors.js';
import type { HostedDocument } from './document.js';
import type { DocumentHost } from './host.js';

const PREFIX = '/api/documents/';

/**
 * The document routes of the HTTP API (docs/http-api.md, docs/collab.md), with the API key:
 * - `GET /api/documents/<name>?text=a,b&map=m&array=l`: `{name, seq, text: {a: "…"}, json: {m: {…}, l: […]}}`
 * - `GET /api/documents/<name>/state[?sv=<base64 state vector>]`: the state (or the diff) as a Yjs update, binary
 * - `POST /api/documents/<name>/update` with a binary Yjs update as body: stored, applied, sent to every editor
 */
export class DocumentRoutes {
  constructor(
    private readonly host: DocumentHost,
    private readonly resolver: ChannelResolver,
    private readonly apiKey: string | undefined,
    private readonly maxUpdateBytes: number,
  ) {}

  async handle(req: IncomingMessage, res: ServerResponse, url: URL): Promise<boolean> {
    if (!url.pathname.startsWith(PREFIX)) return false;
    try {
      const refusal = this.refusal(req);
      if (refusal) throw new HubError(101, refusal);
      let rest: string;
      try {
        rest = decodeURIComponent(url.pathname.slice(PREFIX.length));
      } catch {
        throw new HubError(107, 'document name: malformed percent-encoding');
      }
      let action: 'read' | 'state' | 'update' = 'read';
      if (rest.endsWith('/state')) {
        action = 'state';
        rest = rest.slice(0, -'/state'.length);
      } else if (rest.endsWith('/update')) {
        action = 'update';
        rest = rest.slice(0, -'/update'.length);
      }
      const ch = this.resolver.resolve(rest);
      if (!ch.options.document) throw new HubError(124, `not a document: namespace "${ch.namespace}" has no document: true`);
      const method = action === 'update' ? 'POST' : 'GET';
      if (req.method !== method) throw new HubError(104, `use ${method}`);
      if (action === 'update') {
        const body = await readBinary(req, this.maxUpdateBytes);
        // Held while the write is in flight: an idle unload cannot drop the copy it applies to.
        const seq = await this.host.use(ch.name, (doc) => doc.write(body, undefined));
        sendJson(res, 200, { name: ch.name, seq });
        return true;
      }
      await this.host.use(ch.name, (doc) => {
        if (action === 'state') {
          const sv = url.searchParams.get('sv');
          const state = Y.encodeStateAsUpdate(doc.doc, sv ? new Uint8Array(Buffer.from(sv, 'base64')) : undefined);
          res.writeHead(200, { 'Content-Type': 'application/octet-stream', 'Content-Length': state.byteLength, 'Cache-Control': 'no-store' });
          res.end(Buffer.from(state));
        } else sendJson(res, 200, this.read(doc, url));
      });
    } catch (err) {
      if (!req.complete) res.setHeader('Connection', 'close');
      sendError(res, err);
    }
    return true;
  }

  private read(doc: HostedDocument, url: URL): Record<string, unknown> {
    const list = (p: string): string[] => (url.searchParams.get(p) ?? '').split(',').filter((s) => s !== '');
    const text: Record<string, string> = {};
    const json: Record<string, unknown> = {};
    for (const key of list('text')) text[key] = doc.doc.getText(key).toString();
    for (const key of list('map')) json[key] = doc.doc.getMap(key).toJSON();
    for (const key of list('array')) json[key] = doc.doc.getArray(key).toJSON();
    return { name: doc.name, seq: doc.watermark, text, json };
  }

  private refusal(req: IncomingMessage): string | undefined {
    if (this.apiKey === undefined) return 'the HTTP API is off: no apiKey is configured';
    const header = req.headers.authorization;
    if (header === undefined || !/^apikey /i.test(header)) return 'missing API key: send Authorization: apikey KEY';
    const given = createHash('sha256').update(header.slice(7).trim()).digest();
    return timingSafeEqual(given, createHash('sha256').update(this.apiKey).digest()) ? undefined : 'wrong API key';
  }
}

async function readBinary(req: IncomingMessage, maxBytes: number): Promise<Uint8Array> {
  const declared = Number(req.headers['content-length'] ?? 0);
  if (declared > maxBytes) throw new HubError(121, `update larger than collab.maxUpdateBytes (${maxBytes} bytes)`);
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > maxBytes) throw new HubError(121, `update larger than collab.maxUpdateBytes (${maxBytes} bytes)`);
    chunks.push(chunk);
  }
  if (size === 0) throw new HubError(107, 'body: expected a binary Yjs update');
  return new Uint8Array(Buffer.concat(chunks));
}
