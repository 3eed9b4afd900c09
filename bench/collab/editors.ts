/**
 * The editors of the collab bench, in a process of their own: N documents × M editors, each a
 * raw client with its own Y.Doc, speaking the y-websocket protocol (Switchboard, the reference
 * server) or Hocuspocus' (the same messages, each prefixed with the document name, after an
 * auth message). Closed loop: each editor keeps at most `inFlight` of its updates unseen by the
 * next editor of its document; latency is from the edit to its arrival at every other editor.
 */
import * as decoding from 'lib0/decoding';
import * as encoding from 'lib0/encoding';
import { performance } from 'node:perf_hooks';
import WebSocket from 'ws';
import * as Y from 'yjs';
import { serveRpc } from '../proc/rpc.js';

type Dialect = 'yws' | 'hocus';

interface Editor {
  i: number;
  doc: Y.Doc;
  ws: WebSocket;
  name: string;
  synced: boolean;
  sent: number;
  /** Highest of its updates the next editor has seen. */
  seen: number;
  peers: Editor[];
}

let editors: Editor[] = [];
let measuring = false;
let running = false;
let inFlight = 4;
let delivered = 0;
let latencies: number[] = [];

function frame(dialect: Dialect, name: string, write: (e: encoding.Encoder) => void): Uint8Array {
  const e = encoding.createEncoder();
  if (dialect === 'hocus') encoding.writeVarString(e, name);
  write(e);
  return encoding.toUint8Array(e);
}

function sync(dialect: Dialect, name: string, sub: number, payload: Uint8Array): Uint8Array {
  return frame(dialect, name, (e) => {
    encoding.writeVarUint(e, 0);
    encoding.writeVarUint(e, sub);
    encoding.writeVarUint8Array(e, payload);
  });
}

function edit(ed: Editor, dialect: Dialect): void {
  while (running && ed.synced && ed.sent - ed.seen < inFlight) {
    ed.sent += 1;
    const n = ed.sent;
    ed.doc.transact(() => {
      const text = ed.doc.getText('text');
      text.insert(text.length, 'x');
      ed.doc.getMap('m').set(`e${ed.i}`, [n, performance.now()]);
    }, 'local');
    void dialect;
  }
}

async function open(args: { url: string; dialect: Dialect; docs: number; editors: number; prefix: string }): Promise<number> {
  const { dialect } = args;
  const all: Editor[] = [];
  const opened: Promise<void>[] = [];
  for (let d = 0; d < args.docs; d++) {
    const name = `docs:${args.prefix}-${d}`;
    const group: Editor[] = [];
    for (let i = 0; i < args.editors; i++) {
      const url = dialect === 'hocus' ? args.url : `${args.url}/${name}`;
      const ws = new WebSocket(url, { perMessageDeflate: false });
      ws.binaryType = 'nodebuffer';
      const ed: Editor = { i, doc: new Y.Doc(), ws, name, synced: false, sent: 0, seen: 0, peers: group };
      group.push(ed);
      all.push(ed);
      ed.doc.on('update', (update: Uint8Array, origin: unknown) => {
        if (origin === 'local' && ws.readyState === ws.OPEN) ws.send(sync(dialect, name, 2, update));
      });
      ed.doc.getMap('m').observe((ev) => {
        if (ev.transaction.origin === 'local') return;
        const now = performance.now();
        for (const key of ev.keysChanged) {
          const v = ed.doc.getMap('m').get(key) as [number, number] | undefined;
          if (!v) continue;
          if (measuring) {
            delivered += 1;
            latencies.push(now - v[1]);
          }
          const from = Number(key.slice(1));
          const sender = group[from]!;
          // The next editor of the document acknowledges for the closed loop.
          if ((from + 1) % group.length === i && v[0] > sender.seen) {
            sender.seen = v[0];
            edit(sender, dialect);
          }
        }
      });
      opened.push(
        new Promise<void>((resolve, reject) => {
          ws.once('error', reject);
          ws.on('message', (data: Buffer) => {
            const dec = decoding.createDecoder(new Uint8Array(data.buffer, data.byteOffset, data.byteLength));
            if (dialect === 'hocus') decoding.readVarString(dec);
            const type = decoding.readVarUint(dec);
            if (type !== 0) return;
            const sub = decoding.readVarUint(dec);
            const payload = decoding.readVarUint8Array(dec);
            if (sub === 0) ws.send(sync(dialect, name, 1, Y.encodeStateAsUpdate(ed.doc, payload)));
            else {
              Y.applyUpdate(ed.doc, payload, 'remote');
              if (sub === 1 && !ed.synced) {
                ed.synced = true;
                resolve();
              }
            }
          });
          ws.once('open', () => {
            if (dialect === 'hocus') {
              ws.send(
                frame(dialect, name, (e) => {
                  encoding.writeVarUint(e, 2);
                  encoding.writeVarUint(e, 0);
                  encoding.writeVarString(e, '');
                }),
              );
            }
            ws.send(
              frame(dialect, name, (e) => {
                encoding.writeVarUint(e, 0);
                encoding.writeVarUint(e, 0);
                encoding.writeVarUint8Array(e, Y.encodeStateVector(ed.doc));
              }),
            );
          });
        }),
      );
    }
  }
  editors = all;
  await Promise.all(opened);
  return all.length;
}

/** Editing for warmup + window; returns updates delivered per second, and latency percentiles (ms). */
async function run(args: { warmupMs: number; windowMs: number; inFlight: number; dialect: Dialect }): Promise<Record<string, number>> {
  inFlight = args.inFlight;
  running = true;
  for (const ed of editors) edit(ed, args.dialect);
  await new Promise((r) => setTimeout(r, args.warmupMs));
  delivered = 0;
  latencies = [];
  measuring = true;
  const t0 = performance.now();
  await new Promise((r) => setTimeout(r, args.windowMs));
  measuring = false;
  const seconds = (performance.now() - t0) / 1000;
  running = false;
  const sorted = latencies.sort((a, b) => a - b);
  const pct = (p: number): number => (sorted.length ? sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))]! : NaN);
  const sent = editors.reduce((s, e) => s + e.sent, 0);
  // Convergence: every editor of a document holds the same text (waiting up to 20 s for the backlog).
  const divergedNow = (): number => {
    let n = 0;
    const byDoc = new Map<string, string>();
    for (const e of editors) {
      const t = e.doc.getText('text').toString();
      const first = byDoc.get(e.name);
      if (first === undefined) byDoc.set(e.name, t);
      else if (first !== t) n++;
    }
    return n;
  };
  const settleStart = performance.now();
  let diverged = divergedNow();
  while (diverged > 0 && performance.now() - settleStart < 20_000) {
    await new Promise((r) => setTimeout(r, 100));
    diverged = divergedNow();
  }
  return {
    updatesPerSec: Math.round(delivered / seconds),
    editsPerSec: Math.round(latencies.length / seconds / Math.max(1, (editors[0]?.peers.length ?? 2) - 1)),
    p50: Math.round(pct(0.5) * 10) / 10,
    p99: Math.round(pct(0.99) * 10) / 10,
    sent,
    diverged,
    settleMs: Math.round(performance.now() - settleStart),
  };
}

serveRpc({
  open,
  run,
  close: () => {
    for (const e of editors) e.ws.terminate();
    editors = [];
    return true;
  },
});
