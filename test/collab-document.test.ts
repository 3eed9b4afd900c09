import { describe, expect, it } from 'vitest';
import * as decoding from 'lib0/decoding';
import * as Y from 'yjs';
import { MemoryDocStore, type DocStore } from '../src/collab/doc-store.js';
import { HostedDocument, type DocPeer } from '../src/collab/document.js';
import { encodeUpdate } from '../src/collab/messages.js';

/** A peer that records the sync updates it is sent (message type 0, sub 2). */
class Peer implements DocPeer {
  readonly updates: Uint8Array[] = [];
  readonly messages: Uint8Array[] = [];
  constructor(
    readonly user: string,
    readonly readOnly = false,
  ) {}
  get client(): string {
    return this.user;
  }
  send(message: Uint8Array): void {
    this.messages.push(message);
    const d = decoding.createDecoder(message);
    if (decoding.readVarUint(d) === 0 && decoding.readVarUint(d) === 2) this.updates.push(decoding.readVarUint8Array(d));
  }
  close(): void {}
}

function hosted(store: DocStore = new MemoryDocStore(), failed: (err: unknown) => void = () => undefined): HostedDocument {
  return new HostedDocument('docs:t', {
    store,
    maxUpdateBytes: 1 << 20,
    maxDocumentBytes: 1 << 24,
    publish: () => undefined,
    changed: () => undefined,
    failed: (_doc, err) => failed(err),
    nodeId: 'n',
  });
}

/** Updates of one editor, one per edit. */
function editsOf(n: number, text = 'x'): Uint8Array[] {
  const d = new Y.Doc();
  const out: Uint8Array[] = [];
  d.on('update', (u: Uint8Array) => out.push(u));
  for (let i = 0; i < n; i++) d.getText('t').insert(i * text.length, text);
  return out;
}

const textOf = (updates: Uint8Array[]): string => {
  const d = new Y.Doc();
  for (const u of updates) Y.applyUpdate(d, u);
  return d.getText('t').toString();
};

describe('HostedDocument forwarding', () => {
  it("a peer's update reaches the others as received, one message object for all; never the sender", async () => {
    const doc = hosted();
    const [a, b, c] = [new Peer('a'), new Peer('b'), new Peer('c')];
    for (const p of [a, b, c]) doc.greet(p);
    const [u] = editsOf(1);
    await doc.receive(a, encodeUpdate(u!));
    expect(a.updates).toHaveLength(0);
    expect(Buffer.from(b.updates[0]!)).toEqual(Buffer.from(u!));
    expect(b.messages.at(-1)).toBe(c.messages.at(-1));
    // The same update again brings nothing new: nothing is forwarded.
    await doc.receive(c, encodeUpdate(u!));
    expect(b.updates).toHaveLength(1);
    expect(a.updates).toHaveLength(0);
    doc.destroy();
  });

  it('a change an observer makes in response to a peer update is forwarded too (to the sender as well)', async () => {
    const doc = hosted();
    const [a, b] = [new Peer('a'), new Peer('b')];
    doc.greet(a);
    doc.greet(b);
    // The application reacts to edits: it records how many it has seen in a map.
    let seen = 0;
    doc.doc.getText('t').observe(() => {
      seen += 1;
      doc.doc.getMap('meta').set('seen', seen);
    });
    const ups = editsOf(3);
    for (const u of ups) await doc.receive(a, encodeUpdate(u));
    const replica = new Y.Doc();
    for (const u of b.updates) Y.applyUpdate(replica, u);
    expect(replica.getText('t').toString()).toBe('xxx');
    expect(replica.getMap('meta').get('seen')).toBe(3);
    const sender = new Y.Doc();
    for (const u of [...ups, ...a.updates]) Y.applyUpdate(sender, u);
    expect(sender.getMap('meta').get('seen')).toBe(3);
    doc.destroy();
  });

  it('an update whose dependencies are missing is held back by Yjs; the peers get it once they arrive, and converge', async () => {
    const doc = hosted();
    const [a, b] = [new Peer('a'), new Peer('b')];
    doc.greet(a);
    doc.greet(b);
    const ups = editsOf(4);
    // Out of order: 3 and 4 wait for 2 (Yjs keeps them pending), then 1 and 2 arrive.
    await doc.receive(a, encodeUpdate(ups[2]!));
    await doc.receive(a, encodeUpdate(ups[3]!));
    expect(textOf(b.updates)).toBe('');
    await doc.receive(a, encodeUpdate(ups[0]!));
    await doc.receive(a, encodeUpdate(ups[1]!));
    expect(doc.doc.getText('t').toString()).toBe('xxxx');
    expect(textOf(b.updates)).toBe('xxxx');
    doc.destroy();
  });

  it('writes are applied and acknowledged in the order queued, each after its own append, whatever order the appends finish in; a failed one rejects alone', async () => {
    // A store whose appends finish when the test says, in any order.
    const appends: Array<{ resolve(seq: number): void; reject(err: unknown): void }> = [];
    const store = new MemoryDocStore();
    store.append = () => new Promise<number>((resolve, reject) => appends.push({ resolve, reject }));
    const failures: unknown[] = [];
    const doc = hosted(store, (err) => failures.push(err));
    const [a, b] = [new Peer('a'), new Peer('b')];
    doc.greet(a);
    doc.greet(b);
    const ups = editsOf(4);
    const acked: number[] = [];
    const writes = ups.map((u, i) =>
      doc.receive(a, encodeUpdate(u)).then(
        () => acked.push(i),
        () => acked.push(-i),
      ),
    );
    let settled = false;
    void doc.settled().then(() => (settled = true));
    // The 4th and 2nd finish first: nothing is applied before the 1st.
    appends[3]!.resolve(4);
    appends[1]!.resolve(2);
    await new Promise((r) => setTimeout(r, 5));
    expect(doc.doc.getText('t').toString()).toBe('');
    expect(b.updates).toHaveLength(0);
    appends[0]!.resolve(1);
    await new Promise((r) => setTimeout(r, 5));
    expect(doc.doc.getText('t').toString()).toBe('xx');
    expect(acked).toEqual([0, 1]);
    expect(settled).toBe(false);
    // The 3rd fails: it alone is refused (the store failure is reported), the 4th goes on.
    appends[2]!.reject(new Error('disk full'));
    await Promise.all(writes);
    expect(acked).toEqual([0, 1, -2, 3]);
    expect(failures).toHaveLength(1);
    expect(settled).toBe(true);
    expect(doc.watermark).toBe(2);
    expect(doc.pending.has(4)).toBe(true);
    // The 4th depends on the refused 3rd: Yjs holds it back, and nothing of it is forwarded.
    expect(b.updates).toHaveLength(2);
    expect(doc.doc.getText('t').toString()).toBe('xx');
    doc.destroy();
  });
});
