import fc from 'fast-check';
import { afterEach, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import * as Y from 'yjs';
import { decodeClientMessage } from '../src/collab/messages.js';
import { converged, DOC_NAMESPACES, whenSynced, yWebsocket } from './support/collab.js';
import { closeAllServers, createTestServer } from './support/harness.js';

afterEach(closeAllServers);

describe('collab: malformed input', () => {
  it('the message decoder throws or decodes, never anything else, on any bytes', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 64 }), (bytes) => {
        try {
          const m = decodeClientMessage(bytes);
          expect(['step1', 'step2', 'update', 'awareness', 'queryAwareness']).toContain(m.kind);
        } catch (err) {
          expect(err).toBeInstanceOf(Error);
        }
      }),
      { numRuns: 2000 },
    );
  });

  it('random frames (and sync messages carrying garbage updates) close only their socket; the document and other editors go on', async () => {
    const server = await createTestServer({ namespaces: DOC_NAMESPACES });
    const token = await server.token('fuzz');
    const editor = yWebsocket(server.httpUrl, 'docs:fuzz', token);
    await whenSynced(editor);
    editor.doc.getText('text').insert(0, 'before');
    const samples = fc.sample(
      fc.oneof(
        fc.uint8Array({ minLength: 1, maxLength: 40 }),
        // A well-formed sync update message around random bytes: must not be stored or applied.
        fc.uint8Array({ minLength: 1, maxLength: 30 }).map((u) => Uint8Array.from([0, 2, u.length, ...u])),
      ),
      60,
    );
    for (const frame of samples) {
      const ws = new WebSocket(`${server.httpUrl.replace('http', 'ws')}/collab/docs:fuzz?token=${token}`);
      await new Promise<void>((resolve) => {
        ws.once('message', () => {
          ws.send(frame);
          setTimeout(() => ws.close(), 5);
        });
        ws.once('close', () => resolve());
        ws.once('error', () => resolve());
      });
    }
    // A sentinel edit from a fresh editor reaches the first one: the document is alive and whole.
    const other = yWebsocket(server.httpUrl, 'docs:fuzz', token, new Y.Doc());
    await whenSynced(other);
    other.doc.getText('text').insert(6, ' after');
    expect(await converged([editor.doc, other.doc])).toBe('before after');
    editor.destroy();
    other.destroy();
  });
});
