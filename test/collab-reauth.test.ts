/**
 * A token refresh narrows documents as it narrows channel subscriptions: a document the new
 * token no longer grants is left (`left` push, `rejoin: false`), its edits are refused from
 * then on, and a document still granted keeps syncing.
 */
import { afterEach, describe, expect, it } from 'vitest';
import * as Y from 'yjs';
import * as encoding from 'lib0/encoding';
import * as syncProtocol from 'y-protocols/sync';
import { SwitchboardClient } from '../src/client/index.js';
import { signToken } from '../src/index.js';
import { closeAllServers, createTestServer, TEST_API_KEY, TEST_SECRET, until } from './support/harness.js';
import { converged, sdkDocument } from './support/collab.js';

afterEach(closeAllServers);

const NAMESPACES = { docs: { document: true, subscribe: 'claim' as const } };

/** A y-protocols update message carrying `text` appended to a fresh doc's "text". */
function updateMessage(text: string): { $binary: string } {
  const doc = new Y.Doc();
  doc.getText('text').insert(0, text);
  const e = encoding.createEncoder();
  encoding.writeVarUint(e, 0);
  syncProtocol.writeUpdate(e, Y.encodeStateAsUpdate(doc));
  return { $binary: Buffer.from(encoding.toUint8Array(e)).toString('base64') };
}

function step1(): { $binary: string } {
  const e = encoding.createEncoder();
  encoding.writeVarUint(e, 0);
  syncProtocol.writeSyncStep1(e, new Y.Doc());
  return { $binary: Buffer.from(encoding.toUint8Array(e)).toString('base64') };
}

async function storedText(httpUrl: string, name: string): Promise<string> {
  const res = await fetch(`${httpUrl}/api/documents/${name}?text=text`, { headers: { authorization: `apikey ${TEST_API_KEY}` } });
  if (res.status === 404) return '';
  return ((await res.json()) as { text: { text: string } }).text.text;
}

describe('collab: a token refresh narrows the documents of a session', () => {
  it('raw protocol: the document no longer granted is left with rejoin false, its update is refused with 103; the granted one takes updates', async () => {
    const server = await createTestServer({ namespaces: NAMESPACES });
    const c = await server.client({ tokenExtra: { channels: ['docs:a', 'docs:b'] } });
    await c.call('doc', { channel: 'docs:a', message: step1() });
    await c.call('doc', { channel: 'docs:b', message: step1() });
    await c.call('doc', { channel: 'docs:b', message: updateMessage('before ') });

    const narrower = await server.token('alice', { channels: ['docs:a'], ttl: 7200 });
    await c.call('refresh', { token: narrower });
    const left = await c.waitFor((m) => m.push === 'doc' && m.channel === 'docs:b' && m.left !== undefined);
    expect(left.left).toMatchObject({ code: 103, rejoin: false });
    expect(left.left.message).toMatch(/refreshed token/);

    // Joining again is refused: the update is not applied.
    expect(await c.errorCode('doc', { channel: 'docs:b', message: updateMessage('after ') })).toBe(103);
    // The granted document goes on.
    await c.call('doc', { channel: 'docs:a', message: updateMessage('still here') });
    expect(await storedText(server.httpUrl, 'docs:a')).toBe('still here');
    expect(await storedText(server.httpUrl, 'docs:b')).toBe('before ');
    expect(c.isOpen).toBe(true);
    expect(c.pushes('doc').filter((m) => m.left !== undefined && m.channel === 'docs:a')).toEqual([]);
  });

  it('SDK: after a refresh that drops the document, the provider reports denied, stops sending, and the server copy keeps only what came before', async () => {
    const server = await createTestServer({ namespaces: NAMESPACES });
    // The first token grants docs:x and expires soon; the refresh (getToken) grants only docs:y.
    let calls = 0;
    const getToken = async (): Promise<string> => {
      calls += 1;
      return signToken({ secret: TEST_SECRET, user: 'alice', ttl: calls === 1 ? 2 : 3600, channels: calls === 1 ? ['docs:x', 'docs:y'] : ['docs:y'] });
    };
    const client = new SwitchboardClient(`${server.httpUrl.replace(/^http/, 'ws')}/ws`, { getToken, backoff: { minMs: 50, maxMs: 300, factor: 2 } });
    const errors: Array<{ code: number }> = [];
    client.on('error', (e) => errors.push(e as { code: number }));
    const xDoc = new Y.Doc();
    const yDoc = new Y.Doc();
    const x = client.document('docs:x', xDoc);
    const y = client.document('docs:y', yDoc);
    const denied: unknown[] = [];
    x.on('denied', (r) => denied.push(r));
    client.connect();
    const peer = sdkDocument('docs:y', new Y.Doc(), { url: server.httpUrl, token: await server.token('bob', { channels: ['docs:y'] }) });
    try {
      await Promise.all([x.whenSynced(), y.whenSynced(), peer.whenSynced()]);
      xDoc.getText('text').insert(0, 'granted ');
      await until(async () => (await storedText(server.httpUrl, 'docs:x')) === 'granted ', 'the edit made while granted to be stored');

      await until(() => denied.length > 0, 'the refresh to drop docs:x', 10_000);
      expect(denied[0]).toMatch(/^103 no longer permitted by the refreshed token/);
      expect(errors.some((e) => e.code === 103)).toBe(true);
      expect(x.synced).toBe(false);

      // An edit after it is kept locally and not sent; docs:y goes on and is the sentinel.
      xDoc.getText('text').insert(xDoc.getText('text').length, 'not sent');
      yDoc.getText('text').insert(0, 'sentinel');
      await converged([yDoc, peer.doc]);
      await until(async () => (await storedText(server.httpUrl, 'docs:y')) === 'sentinel', 'the sentinel to be stored');
      expect(await storedText(server.httpUrl, 'docs:x')).toBe('granted ');
      expect(errors.filter((e) => e.code === 103)).toHaveLength(1);
      expect(client.state).toBe('connected');
    } finally {
      x.destroy();
      y.destroy();
      peer.destroy();
      client.disconnect();
    }
  });
});
