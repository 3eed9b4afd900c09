import { afterEach, describe, expect, it } from 'vitest';
import * as decoding from 'lib0/decoding';
import WebSocket from 'ws';
import * as Y from 'yjs';
import { closeAllServers, createTestServer, TEST_API_KEY, until } from './support/harness.js';
import { converged, DOC_NAMESPACES, rawEdit, whenSynced, yWebsocket, sdkDocument } from './support/collab.js';

afterEach(closeAllServers);

describe('collab: y-websocket compatible documents', () => {
  it('the npm y-websocket client and the SDK provider edit one document and converge', async () => {
    const server = await createTestServer({ namespaces: DOC_NAMESPACES });
    const a = yWebsocket(server.httpUrl, 'docs:readme', await server.token('alice'));
    const bDoc = new Y.Doc();
    const b = sdkDocument('docs:readme', bDoc, { url: server.httpUrl, token: await server.token('bob') });
    try {
      await whenSynced(a);
      await b.whenSynced();
      a.doc.getText('text').insert(0, 'hello from y-websocket. ');
      bDoc.getText('text').insert(0, 'hello from the SDK. ');
      for (let i = 0; i < 50; i++) {
        const t = i % 2 ? a.doc.getText('text') : bDoc.getText('text');
        t.insert(t.length, String(i % 10));
      }
      const text = await converged([a.doc, bDoc]);
      expect(text).toContain('hello from y-websocket. ');
      expect(text).toContain('hello from the SDK. ');
      expect(text.length).toBe('hello from y-websocket. '.length + 'hello from the SDK. '.length + 50);
      // Awareness is relayed: each sees the other's state, and it goes when the connection goes.
      a.awareness.setLocalStateField('user', { name: 'Alice' });
      b.awareness.setLocalStateField('user', { name: 'Bob' });
      await until(() => [...a.awareness.getStates().values()].some((s) => (s as { user?: { name: string } }).user?.name === 'Bob'), 'Bob seen');
      await until(() => [...b.awareness.getStates().values()].some((s) => (s as { user?: { name: string } }).user?.name === 'Alice'), 'Alice seen');
      a.destroy();
      await until(() => !b.awareness.getStates().has(a.doc.clientID), "Alice's awareness cleared when her connection went");
      // The server's copy, read over the HTTP API, equals them.
      const res = await fetch(`${server.httpUrl}/api/documents/docs:readme?text=text`, { headers: { authorization: `apikey ${TEST_API_KEY}` } });
      expect(((await res.json()) as { text: { text: string } }).text.text).toBe(text);
    } finally {
      a.destroy();
      b.destroy();
    }
  });

  it("a client's incremental update reaches the other peers as the very bytes it sent, and the document holds it", async () => {
    const server = await createTestServer({ namespaces: DOC_NAMESPACES });
    const wsUrl = async (user: string): Promise<string> => `${server.httpUrl.replace('http', 'ws')}/collab/docs:raw?token=${await server.token(user)}`;
    const reader = new WebSocket(await wsUrl('r'));
    reader.binaryType = 'nodebuffer';
    const updates: Uint8Array[] = [];
    reader.on('message', (data: Buffer) => {
      const d = decoding.createDecoder(new Uint8Array(data));
      if (decoding.readVarUint(d) !== 0 || decoding.readVarUint(d) !== 2) return;
      updates.push(decoding.readVarUint8Array(d));
    });
    await new Promise((r) => reader.once('message', r));
    const src = new Y.Doc();
    src.getText('text').insert(0, 'as sent');
    const update = Y.encodeStateAsUpdate(src);
    await rawEdit(await wsUrl('w'), update);
    // The same update again (nothing new: not forwarded, as the reference server does), then a sentinel.
    await rawEdit(await wsUrl('w'), update);
    src.getText('text').insert(7, '!');
    const sentinel = Y.encodeStateAsUpdate(src, Y.encodeStateVectorFromUpdate(update));
    await rawEdit(await wsUrl('w'), sentinel);
    await until(() => updates.some((u) => Buffer.from(u).equals(Buffer.from(sentinel))), 'the sentinel at the reader');
    expect(updates.map((u) => Buffer.from(u).toString('hex'))).toEqual([update, sentinel].map((u) => Buffer.from(u).toString('hex')));
    expect((await server.hub.document('docs:raw')).getText('text').toString()).toBe('as sent!');
    reader.close();
  });

  it('a read-only user is refused (error 120) and the document does not change', async () => {
    const server = await createTestServer({
      namespaces: DOC_NAMESPACES,
      documentHooks: { canEdit: (ctx) => ctx.user !== 'reader' },
    });
    const writer = sdkDocument('docs:ro-test', new Y.Doc(), { url: server.httpUrl, token: await server.token('writer') });
    const readerDoc = new Y.Doc();
    const reader = sdkDocument('docs:ro-test', readerDoc, { url: server.httpUrl, token: await server.token('reader') });
    try {
      await writer.whenSynced();
      await reader.whenSynced();
      writer.doc.getText('text').insert(0, 'original');
      await converged([writer.doc, readerDoc]);
      const denied: unknown[] = [];
      reader.on('denied', (r) => denied.push(r));
      readerDoc.getText('text').insert(0, 'VANDAL ');
      await until(() => denied.length > 0, 'the refusal');
      expect(denied[0]).toMatch(/^120 /);
      // A sentinel after the refused edit: once it arrived, the refused one would have too.
      writer.doc.getText('text').insert(8, '!');
      const check = new Y.Doc();
      const fresh = sdkDocument('docs:ro-test', check, { url: server.httpUrl, token: await server.token('third') });
      await fresh.whenSynced();
      await until(() => check.getText('text').toString().endsWith('!'), 'sentinel');
      expect(check.getText('text').toString()).toBe('original!');
      fresh.destroy();
      // clientPublish: "none" makes a whole namespace read-only for clients; the HTTP API still writes.
      const y = yWebsocket(server.httpUrl, 'ro:notice', await server.token('alice'));
      await whenSynced(y);
      const src = new Y.Doc();
      src.getText('text').insert(0, 'from the backend');
      const post = await fetch(`${server.httpUrl}/api/documents/ro:notice/update`, {
        method: 'POST',
        headers: { authorization: `apikey ${TEST_API_KEY}`, 'content-type': 'application/octet-stream' },
        body: Buffer.from(Y.encodeStateAsUpdate(src)),
      });
      expect(post.status).toBe(200);
      await until(() => y.doc.getText('text').toString() === 'from the backend', 'backend update delivered');
      y.doc.getText('text').insert(0, 'nope ');
      const state = await fetch(`${server.httpUrl}/api/documents/ro:notice/state`, { headers: { authorization: `apikey ${TEST_API_KEY}` } });
      const stored = new Y.Doc();
      Y.applyUpdate(stored, new Uint8Array(await state.arrayBuffer()));
      expect(stored.getText('text').toString()).toBe('from the backend');
      y.destroy();
    } finally {
      writer.destroy();
      reader.destroy();
    }
  });

  it('refuses a channel outside document namespaces and a missing token before the upgrade', async () => {
    const server = await createTestServer({ namespaces: DOC_NAMESPACES });
    const ws = await import('ws');
    const status = (url: string): Promise<number> =>
      new Promise((resolve) => {
        const s = new ws.WebSocket(url);
        s.on('unexpected-response', (_req, res) => resolve(res.statusCode ?? 0));
        s.on('open', () => resolve(101));
        s.on('error', () => undefined);
      });
    const base = server.httpUrl.replace('http', 'ws');
    expect(await status(`${base}/collab/chat:room?token=${await server.token('a')}`)).toBe(404);
    expect(await status(`${base}/collab/docs:x`)).toBe(401);
    expect(await status(`${base}/collab/docs:x?token=garbage`)).toBe(401);
    expect(await status(`${base}/collab/docs:x?token=${await server.token('a')}`)).toBe(101);
    // A token's exp ends the socket with 4003 (the provider reconnects with a fresh token).
    const expiring = new ws.WebSocket(`${base}/collab/docs:x?token=${await server.token('a', { ttl: 1 })}`);
    const code = await new Promise<number>((resolve) => expiring.on('close', (c) => resolve(c)));
    expect(code).toBe(4003);
  });
});
