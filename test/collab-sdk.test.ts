import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import * as Y from 'yjs';
import type { WebSocketConstructor } from '../src/client/index.js';
import { signToken } from '../src/index.js';
import { converged, DOC_NAMESPACES, sdkDocument, whenSynced, yWebsocket } from './support/collab.js';
import { closeAllServers, createTestServer, TEST_API_KEY, TEST_SECRET, until } from './support/harness.js';
import { killProcesses, startHubProcess } from './support/processes.js';
import { FaultyDocStore } from './support/faulty-doc-store.js';
import { HubError } from '../src/protocol/errors.js';

afterEach(async () => {
  await closeAllServers();
  await killProcesses();
});

const auth = { authorization: `apikey ${TEST_API_KEY}` };

async function storedText(httpUrl: string, name: string): Promise<string> {
  const res = await fetch(`${httpUrl}/api/documents/${name}?text=text`, { headers: auth });
  expect(res.status).toBe(200);
  return ((await res.json()) as { text: { text: string } }).text.text;
}

/** A `ws` WebSocket whose sockets the test can drop (terminate: no close handshake). */
function droppable(): { Ctor: WebSocketConstructor; dropAll(): void } {
  const open = new Set<WebSocket>();
  class Tracked extends WebSocket {
    constructor(url: string, protocols?: string | string[]) {
      super(url, protocols);
      open.add(this);
      this.on('close', () => open.delete(this));
    }
  }
  return { Ctor: Tracked as unknown as WebSocketConstructor, dropAll: () => [...open].forEach((ws) => ws.terminate()) };
}

describe('collab: documents over the SDK connection (doc frames)', () => {
  it('a dropped SDK socket mid-edit: edits on both sides meanwhile, the SDK syncs again on reconnect and all converge (JSON and MessagePack)', async () => {
    const server = await createTestServer({ namespaces: DOC_NAMESPACES });
    const name = 'docs:drop';
    const json = droppable();
    const a = sdkDocument(name, new Y.Doc(), { url: server.httpUrl, token: await server.token('a'), WebSocket: json.Ctor });
    const b = sdkDocument(name, new Y.Doc(), { url: server.httpUrl, token: await server.token('b'), codec: 'msgpack' });
    const c = yWebsocket(server.httpUrl, name, await server.token('c'));
    try {
      await Promise.all([a.whenSynced(), b.whenSynced(), whenSynced(c)]);
      a.awareness.setLocalStateField('user', { name: 'A' });
      await until(() => c.awareness.getStates().has(a.doc.clientID), "A's awareness seen by the y-websocket peer");
      for (let i = 0; i < 20; i++) {
        a.doc.getText('text').insert(a.doc.getText('text').length, 'q');
        b.doc.getText('text').insert(0, 'z');
        if (i === 10) json.dropAll();
      }
      // While A is off: its awareness is gone on the server (cleared with its connection), and both sides edit.
      await until(() => !c.awareness.getStates().has(a.doc.clientID), "A's awareness cleared when its connection went");
      a.doc.getText('text').insert(0, 'offline-A ');
      c.doc.getText('text').insert(0, 'while-A-away ');
      await until(() => a.synced, 'A synced again after the reconnect');
      const text = await converged([a.doc, b.doc, c.doc]);
      expect(text).toContain('offline-A ');
      expect(text).toContain('while-A-away ');
      expect(text.split('q').length - 1).toBe(20);
      expect(text.split('z').length - 1).toBe(20);
      // A's awareness comes back with the new connection.
      await until(() => c.awareness.getStates().has(a.doc.clientID), "A's awareness back after the reconnect");
      expect(await storedText(server.httpUrl, name)).toBe(text);
    } finally {
      a.destroy();
      b.destroy();
      c.destroy();
    }
  });

  it('a SIGKILLed and restarted server (SQLite): edits made while it is down on both sides reach it, and everyone converges with what is stored', async () => {
    const dataDir = mkdtempSync(join(tmpdir(), 'sb-collab-sdk-'));
    try {
      const options = { dataDir, apiKey: TEST_API_KEY, auth: { secret: TEST_SECRET }, namespaces: DOC_NAMESPACES };
      const node = await startHubProcess(options);
      const token = await signToken({ secret: TEST_SECRET, user: 'u' });
      const name = 'docs:restart';
      const a = sdkDocument(name, new Y.Doc(), { url: node.httpUrl, token });
      const b = sdkDocument(name, new Y.Doc(), { url: node.httpUrl, token, codec: 'msgpack' });
      const c = yWebsocket(node.httpUrl, name, token);
      try {
        await Promise.all([a.whenSynced(), b.whenSynced(), whenSynced(c)]);
        for (let i = 0; i < 30; i++) {
          a.doc.getText('text').insert(0, String(i % 10));
          if (i === 15) await node.kill();
          b.doc.getText('text').insert(b.doc.getText('text').length, 'x');
        }
        await until(() => !a.synced && !b.synced, 'the SDK saw the server go');
        a.doc.getText('text').insert(0, 'down-A ');
        b.doc.getText('text').insert(0, 'down-B ');
        c.doc.getText('text').insert(0, 'down-C ');
        const again = await startHubProcess(options, node.port);
        await until(() => a.synced && b.synced && c.synced, 'all synced with the restarted server', 20_000);
        const text = await converged([a.doc, b.doc, c.doc], 'text', 20_000);
        for (const part of ['down-A ', 'down-B ', 'down-C ']) expect(text).toContain(part);
        expect(text.split('x').length - 1).toBe(30);
        await until(async () => (await storedText(again.httpUrl, name)) === text, 'the restarted server stored it all');
      } finally {
        a.destroy();
        b.destroy();
        c.destroy();
      }
    } finally {
      rmSync(dataDir, { recursive: true, force: true });
    }
  }, 60_000);

  it('a read-only user over the SDK connection: its update is refused with error 120 (JSON and MessagePack), the document is unchanged', async () => {
    const server = await createTestServer({ namespaces: DOC_NAMESPACES, documentHooks: { canEdit: (ctx) => !ctx.user.startsWith('reader') } });
    const name = 'docs:ro-sdk';
    const writer = sdkDocument(name, new Y.Doc(), { url: server.httpUrl, token: await server.token('writer') });
    const readers = [
      sdkDocument(name, new Y.Doc(), { url: server.httpUrl, token: await server.token('reader1') }),
      sdkDocument(name, new Y.Doc(), { url: server.httpUrl, token: await server.token('reader2'), codec: 'msgpack' }),
    ];
    try {
      await Promise.all([writer.whenSynced(), ...readers.map((r) => r.whenSynced())]);
      writer.doc.getText('text').insert(0, 'original');
      await converged([writer.doc, ...readers.map((r) => r.doc)]);
      for (const [i, reader] of readers.entries()) {
        const denied: unknown[] = [];
        reader.on('denied', (r) => denied.push(r));
        reader.doc.getText('text').insert(0, `VANDAL${i} `);
        await until(() => denied.length > 0, 'the refusal');
        expect(denied[0]).toBe('120 document is read-only');
      }
      // A sentinel after the refused edits: once it is stored, the refused ones would have been too.
      writer.doc.getText('text').insert(8, '!');
      await until(async () => (await storedText(server.httpUrl, name)) === 'original!', 'the sentinel stored');
      expect(writer.doc.getText('text').toString()).toBe('original!');
    } finally {
      writer.destroy();
      for (const r of readers) r.destroy();
    }
  });

  it('metrics: documents open, updates and bytes stored, failed loads; a refused first doc command answers the load error', async () => {
    const store = new FaultyDocStore();
    const server = await createTestServer({ namespaces: DOC_NAMESPACES, documentStore: store });
    const metric = async (name: string): Promise<number> => {
      const text = await (await fetch(`${server.httpUrl}/metrics`)).text();
      const line = text.split('\n').find((l) => l.startsWith(`${name} `));
      if (!line) throw new Error(`no ${name} in metrics`);
      return Number(line.split(' ').pop());
    };
    expect(await metric('switchboard_documents_open')).toBe(0);
    store.faults.throw('load', new HubError(114, 'store down'), { times: 1 });
    const a = sdkDocument('docs:metrics', new Y.Doc(), { url: server.httpUrl, token: await server.token('a') });
    const errors: unknown[] = [];
    a.client.on('error', (e) => errors.push(e));
    try {
      // The first join fails (123, temporary): reported, and the provider joins again after it.
      await until(() => errors.length > 0, 'the failed load reported');
      expect((errors[0] as { code: number }).code).toBe(123);
      expect(await metric('switchboard_document_load_failures_total')).toBe(1);
      await a.whenSynced();
      a.doc.getText('text').insert(0, 'counted');
      await until(async () => (await metric('switchboard_document_updates_total')) >= 1, 'the update counted');
      expect(await metric('switchboard_document_update_bytes_total')).toBeGreaterThan(7);
      expect(await metric('switchboard_documents_open')).toBe(1);
    } finally {
      a.destroy();
    }
  });

  it('an HTTP write in flight holds its document: the idle unload waits, and an editor joining meanwhile gets the write', async () => {
    const store = new FaultyDocStore();
    const server = await createTestServer({ namespaces: DOC_NAMESPACES, documentStore: store, collab: { idleUnloadMs: 30 } });
    const name = 'docs:held';
    const src = new Y.Doc();
    src.getText('text').insert(0, 'written over HTTP');
    store.faults.hang('append', { times: 1 });
    const post = fetch(`${server.httpUrl}/api/documents/${name}/update`, {
      method: 'POST',
      headers: { ...auth, 'content-type': 'application/octet-stream' },
      body: Buffer.from(Y.encodeStateAsUpdate(src)),
    });
    await until(() => store.faults.calls('append') >= 1, 'the append in flight');
    // Several idle times pass while the append hangs; the document stays (held by the request).
    await new Promise((r) => setTimeout(r, 150));
    const editor = yWebsocket(server.httpUrl, name, await server.token('e'));
    try {
      await whenSynced(editor);
      expect(server.hub.openDocuments).toBe(1);
      store.faults.release('append');
      expect((await post).status).toBe(200);
      // The write reached the copy the editor joined (a copy loaded after an unload would lack it).
      await until(() => editor.doc.getText('text').toString() === 'written over HTTP', 'the editor got the HTTP write');
      expect(await storedText(server.httpUrl, name)).toBe('written over HTTP');
    } finally {
      store.faults.reset();
      editor.destroy();
    }
  });
});
