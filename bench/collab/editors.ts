/**
 * An editors agent of the collab bench, in a process of its own (the orchestrator runs
 * `collabAgents` of them, each holding whole documents, so a document's editors share one
 * process and one clock): each editor is a raw client with its own Y.Doc, speaking the
 * y-websocket protocol (Switchboard, the reference server) or Hocuspocus' (the same messages,
 * each prefixed with the document name, after an auth message). Two loads:
 * - closed loop: each editor keeps at most `inFlight` of its edits unseen by the next editor of
 *   its document (saturation: throughput, and latency ≈ in-flight ÷ throughput);
 * - open loop: each editor edits at a fixed rate whatever the server does (latency at an offered
 *   rate below saturation: the server's own delay, not the queue the closed loop builds).
 * Each edit is one transaction (one update), and sets the editor's key in a map to its number n.
 * A receiver counts every edit up to the n it observes as delivered — so an update that merged
 * several edits counts each of them — with each one's latency from the sender's own send time
 * (`sentAt`), to its arrival at that editor.
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
  /** Highest of its edits the next editor has seen (the closed loop's acknowledgement). */
  seen: number;
  /** performance.now() of each of its edits (index n − 1). */
  sentAt: number[];
  /** Highest edit of each editor of the document this one has observed (by editor index). */
  got: number[];
  peers: Editor[];
}

export interface EditorsReport {
  /** Edits delivered to an editor (one per edit and receiving editor) in the window. */
  delivered: number;
  /** Their latencies (ms, 0.01 ms resolution), for percentiles over every agent. */
  latencies: number[];
  /** Edits made in the window. */
  edits: number;
  elapsedMs: number;
  /** Open loop: edits skipped because the editor already had `openMaxBehind` unseen (the server fell behind). */
  skipped: number;
}

let editors: Editor[] = [];
let measuring = false;
let running = false;
let inFlight = 4;
let delivered = 0;
let editsInWindow = 0;
let skipped = 0;
let latencies: number[] = [];
let t0 = 0;
let ticker: NodeJS.Timeout | undefined;

/** Open loop: an editor this far behind (edits unseen by the next editor) skips its turn. */
const OPEN_MAX_BEHIND = 200;

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

/** One edit: one transaction, so one update on the wire. */
function editOnce(ed: Editor): void {
  ed.sent += 1;
  const n = ed.sent;
  const now = performance.now();
  ed.sentAt.push(now);
  if (measuring) editsInWindow += 1;
  ed.doc.transact(() => {
    const text = ed.doc.getText('text');
    text.insert(text.length, 'x');
    ed.doc.getMap('m').set(`e${ed.i}`, [n, now]);
  }, 'local');
}

/** Closed loop: edits while fewer than `inFlight` are unseen by the next editor. */
function edit(ed: Editor): void {
  if (ticker) return;
  while (running && ed.synced && ed.sent - ed.seen < inFlight) editOnce(ed);
}

async function open(args: { url: string; dialect: Dialect; docs: number[]; editors: number; prefix: string }): Promise<number> {
  const { dialect } = args;
  const all: Editor[] = [];
  const opened: Promise<void>[] = [];
  for (const d of args.docs) {
    const name = `docs:${args.prefix}-${d}`;
    const group: Editor[] = [];
    for (let i = 0; i < args.editors; i++) {
      const url = dialect === 'hocus' ? args.url : `${args.url}/${name}`;
      const ws = new WebSocket(url, { perMessageDeflate: false });
      ws.binaryType = 'nodebuffer';
      const ed: Editor = { i, doc: new Y.Doc(), ws, name, synced: false, sent: 0, seen: 0, sentAt: [], got: new Array<number>(args.editors).fill(0), peers: group };
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
          const from = Number(key.slice(1));
          const sender = group[from]!;
          const n = v[0];
          const prev = ed.got[from]!;
          if (n <= prev) continue;
          ed.got[from] = n;
          // Every edit up to n arrived with this update (one each, even when a server merged them).
          if (measuring) {
            for (let k = prev + 1; k <= n; k++) {
              delivered += 1;
              latencies.push(Math.round((now - sender.sentAt[k - 1]!) * 100) / 100);
            }
          }
          // The next editor of the document acknowledges for the closed loop.
          if ((from + 1) % group.length === i && n > sender.seen) {
            sender.seen = n;
            edit(sender);
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

/**
 * Starts editing: closed loop (`inFlight`), or open loop at `perEditorHz` edits a second per
 * editor, each editor at its own phase (a 2 ms ticker sends each editor's edits that are due).
 */
function start(args: { inFlight?: number; perEditorHz?: number }): boolean {
  running = true;
  if (args.perEditorHz) {
    const hz = args.perEditorHz;
    const begin = performance.now();
    const phase = editors.map((_, k) => (k / Math.max(1, editors.length)) * (1000 / hz));
    const done = editors.map(() => 0);
    ticker = setInterval(() => {
      const now = performance.now();
      for (let k = 0; k < editors.length; k++) {
        const ed = editors[k]!;
        if (!ed.synced) continue;
        const due = Math.floor(((now - begin - phase[k]!) * hz) / 1000) + 1;
        while (done[k]! < due) {
          done[k]! += 1;
          if (ed.sent - ed.seen >= OPEN_MAX_BEHIND) {
            if (measuring) skipped += 1;
            continue;
          }
          editOnce(ed);
        }
      }
    }, 2);
  } else {
    inFlight = args.inFlight ?? 4;
    for (const ed of editors) edit(ed);
  }
  return true;
}

function reset(): boolean {
  delivered = 0;
  editsInWindow = 0;
  skipped = 0;
  latencies = [];
  t0 = performance.now();
  measuring = true;
  return true;
}

function report(): EditorsReport {
  measuring = false;
  return { delivered, latencies, edits: editsInWindow, elapsedMs: performance.now() - t0, skipped };
}

/** Stops editing and waits (up to `timeoutMs`) until every editor of a document holds the same text; returns how many do not. */
async function settle(args: { timeoutMs: number }): Promise<{ diverged: number; settleMs: number }> {
  running = false;
  clearInterval(ticker);
  ticker = undefined;
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
  while (diverged > 0 && performance.now() - settleStart < args.timeoutMs) {
    await new Promise((r) => setTimeout(r, 100));
    diverged = divergedNow();
  }
  return { diverged, settleMs: Math.round(performance.now() - settleStart) };
}

serveRpc({
  elu: () => performance.eventLoopUtilization(),
  open,
  start,
  reset,
  report,
  settle,
  close: () => {
    running = false;
    clearInterval(ticker);
    ticker = undefined;
    for (const e of editors) e.ws.terminate();
    editors = [];
    return true;
  },
});

// A normal exit on SIGTERM, so --cpu-prof writes its profile.
process.on('SIGTERM', () => process.exit(0));
