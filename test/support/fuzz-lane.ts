/**
 * The WebSocket fuzz's lanes (test/fuzz-ws.test.ts): a lane renders the frames of
 * test/support/fuzz-frames.ts over its own connection (reopened when the server closes it) and
 * checks what came back after every frame, with a sentinel (a `ping` sent after it: commands
 * run in order, so once it is answered every earlier command has been answered):
 *
 * - every command line with a valid id gets exactly one reply (result or error) with that id,
 *   and no reply carries an id that was not sent; every line without a usable id gets exactly
 *   one id-less error; `{"method":"pong"}` gets nothing;
 * - or the connection was closed, with the close code its frame calls for (1007 invalid UTF-8,
 *   1009 too big, else 4502/4005 after too many violations), never more than one reply per id;
 * - every error code is in the registry (src/protocol/errors.ts), never 100; every line the
 *   server sends is JSON, and every push is of a documented kind;
 * - `data` nested deeper than any allowed `limits.maxJsonDepth` is refused with 107.
 */
import fc from 'fast-check';
import { CloseCode, ERRORS } from '../../src/index.js';
import { frame, MAX_ALLOWED_DEPTH, MAX_MESSAGE_BYTES, nested, toJson, type Frame, type Line } from './fuzz-frames.js';
import type { TestServer } from './harness.js';
import type { ProtocolClient, ServerMessage } from './protocol-client.js';

const DOCUMENTED_CLOSE_CODES = new Set<number>(Object.values(CloseCode));
const PUSH_KINDS = new Set(['pub', 'join', 'leave', 'typing', 'read', 'unsubscribe', 'disconnect', 'ping']);

/** What the server owes for one line: a reply with this id, one id-less error, or nothing. */
type Owed = { reply: number } | 'orphan' | 'nothing';

interface Rendered {
  data: string | Buffer;
  binary: boolean;
  owed: Owed[];
  /** Ids whose command is deep `data` in a publish: refused with 107 when deeper than any allowed limit. */
  deep: Map<number, number>;
  /** Close codes the frame may end the connection with. */
  closes: number[];
  text: string;
}

export class Lane {
  client!: ProtocolClient;
  private nextId = 1;
  opened = 0;
  closes = new Map<number, number>();
  /** Close codes the previous frame allowed, for a close noticed only at the next one. */
  private lastCloses: number[] = [];
  private lastFrame = '';
  /** The connection whose close was already checked. */
  private checkedClose: ProtocolClient | undefined;

  constructor(
    readonly name: string,
    private readonly connect: boolean,
    private readonly on: () => TestServer,
  ) {}

  async open(): Promise<void> {
    this.client = await this.on().client({ user: 'fuzzer', retainPubs: false, connect: this.connect });
    this.opened += 1;
  }

  id(): number {
    return this.nextId++;
  }

  render(fr: Frame): Rendered {
    const owed: Owed[] = [];
    const deep = new Map<number, number>();
    if (fr.kind === 'binary') {
      return {
        data: Buffer.from(fr.bytes),
        binary: true,
        owed: ['orphan'],
        deep,
        closes: [4502, 4005],
        text: `<binary ${fr.bytes.length} bytes>`,
      };
    }
    if (fr.kind === 'invalidUtf8') {
      const data = Buffer.concat([Buffer.from(fr.prefix), Buffer.from(fr.bad), Buffer.from('"}}')]);
      return { data, binary: false, owed: [], deep, closes: [1007], text: `<invalid UTF-8 ${data.toString('hex')}>` };
    }
    if (fr.kind === 'oversize') {
      const id = this.id();
      const head = `{"id":${id},"method":"publish","params":{"channel":"fuzz:x","data":"`;
      const text = head + 'x'.repeat(MAX_MESSAGE_BYTES + fr.extra - head.length) + '"}}';
      return { data: text, binary: false, owed: [], deep, closes: [1009], text: `<oversize ${text.length} bytes>` };
    }
    const texts = fr.lines.map((l) => {
      const { text, owe, deepDepth } = this.renderLine(l);
      owed.push(owe);
      if (deepDepth !== undefined && typeof owe === 'object') deep.set(owe.reply, deepDepth);
      return text;
    });
    const sep = fr.crlf ? '\r\n' : '\n';
    const text = texts.join(sep) + (fr.trailingNewline ? sep : '');
    return { data: text, binary: false, owed, deep, closes: [4502, 4005], text };
  }

  private renderLine(l: Line): { text: string; owe: Owed; deepDepth?: number } {
    switch (l.kind) {
      case 'command': {
        const id = this.id();
        const cmd: Record<string, unknown> = { id, method: l.method };
        if (!l.omitParams) cmd.params = l.params;
        return { text: toJson(cmd), owe: { reply: id } };
      }
      case 'noId':
        return { text: toJson({ method: l.method, params: l.params }), owe: 'orphan' };
      case 'badId':
        return { text: toJson({ id: l.id, method: l.method }), owe: 'orphan' };
      case 'extraField': {
        const id = this.id();
        return {
          text: `{"id":${id},"method":${JSON.stringify(l.method)},${JSON.stringify(l.field)}:${toJson(l.value)}}`,
          owe: { reply: id },
        };
      }
      case 'badMethod': {
        const id = this.id();
        return { text: `{"id":${id},"method":${toJson(l.method)}}`, owe: { reply: id } };
      }
      case 'deep': {
        const id = this.id();
        const value = nested(l.depth, l.shape);
        const text =
          l.where === 'data'
            ? `{"id":${id},"method":"publish","params":{"channel":"fuzz:${this.name}","data":${value}}}`
            : l.where === 'rpc'
              ? `{"id":${id},"method":"rpc","params":{"method":"nope","data":${value}}}`
              : `{"id":${id},"method":"ping","params":{"deep":${value}}}`;
        // Depth of `data` as a whole command line: the command and params objects add two.
        return { text, owe: { reply: id }, ...(l.where === 'data' && this.connect ? { deepDepth: l.depth } : {}) };
      }
      case 'notObject':
        return { text: toJson(l.value), owe: 'orphan' };
      case 'garbage': {
        let parsed: unknown;
        let ok = true;
        try {
          parsed = JSON.parse(l.text.trim());
        } catch {
          ok = false;
        }
        if (l.text.trim() === '' || l.text.includes('\n')) return { text: '', owe: 'nothing' };
        if (!ok) return { text: l.text, owe: 'orphan' };
        // It happened to parse: only a non-object (or an object without a usable envelope) is owed an orphan error.
        const isObj = typeof parsed === 'object' && parsed !== null && !Array.isArray(parsed);
        if (isObj) return { text: '', owe: 'nothing' };
        return { text: l.text, owe: 'orphan' };
      }
      case 'pong':
        return { text: '{"method":"pong"}', owe: 'nothing' };
      case 'blank':
        return { text: l.text, owe: 'nothing' };
    }
  }

  /** Sends one frame and checks what came back; reopens the connection if the server closed it. */
  async check(fr: Frame): Promise<void> {
    if (!this.client.isOpen) {
      if (this.checkedClose !== this.client) {
        // Closed after answering the last sentinel (its violations closed it once the replies were out).
        const { code } = await this.client.closed;
        this.closes.set(code, (this.closes.get(code) ?? 0) + 1);
        if (!this.lastCloses.includes(code))
          throw new Error(`closed with ${code} after frame ${this.lastFrame}, expected one of ${this.lastCloses}`);
      }
      await this.open();
    }
    const c = this.client;
    const r = this.render(fr);
    const from = c.messages.length;
    c.sendRaw(r.data, { binary: r.binary });
    const sentinelId = this.id();
    let sentinelOk = true;
    try {
      await c.requestRaw(sentinelId, `{"id":${sentinelId},"method":"ping"}`, 10_000);
    } catch (err) {
      sentinelOk = false;
      // Not closed and not answered: the server lost a command.
      if (!c.closeInfo) throw new Error(`no answer to the sentinel after frame ${describeFrame(r)}: ${(err as Error).message}`);
    }
    const got = c.messages.slice(from);
    // Messages are built only on failure: the fuzz checks thousands of frames.
    const ensure = (ok: boolean, what: () => string): void => {
      if (!ok) throw new Error(`${what()}\nframe ${describeFrame(r)}\nreceived ${JSON.stringify(got).slice(0, 2000)}`);
    };
    ensure(c.undecodable.length === 0, () => `undecodable lines from the server: ${JSON.stringify(c.undecodable)}`);

    const replies = new Map<number, ServerMessage[]>();
    const orphans: ServerMessage[] = [];
    for (const m of got) {
      if (m.push !== undefined) {
        ensure(PUSH_KINDS.has(m.push), () => `unknown push kind ${m.push}`);
        continue;
      }
      if (m.error) ensure(Object.hasOwn(ERRORS, m.error.code), () => `error code ${m.error!.code} is not in the registry`);
      // No storage faults here: an internal error (100) is a bug the input found.
      ensure(m.error?.code !== 100, () => `internal error (100) in reply ${JSON.stringify(m)}`);
      if (typeof m.id === 'number') {
        const list = replies.get(m.id) ?? [];
        list.push(m);
        replies.set(m.id, list);
        ensure(
          (m.result === undefined) !== (m.error === undefined),
          () => `reply ${JSON.stringify(m)} must have exactly one of result and error`,
        );
      } else {
        ensure(m.error !== undefined, () => `message ${JSON.stringify(m)} has neither id nor push, and is not an error`);
        orphans.push(m);
      }
    }
    const owedIds = new Set(r.owed.flatMap((o) => (typeof o === 'object' ? [o.reply] : [])));
    for (const [id, list] of replies) {
      ensure(owedIds.has(id) || id === sentinelId, () => `reply to id ${id}, which was never sent`);
      ensure(list.length === 1, () => `${list.length} replies to id ${id}`);
    }
    for (const [id, depth] of r.deep) {
      const reply = replies.get(id)?.[0];
      if (!reply) continue;
      if (depth > MAX_ALLOWED_DEPTH) {
        ensure(
          reply.error?.code === 107,
          () => `publish of data nested ${depth} deep answered ${JSON.stringify(reply)}, expected error 107`,
        );
      } else if (reply.error) {
        // Too deep for this hub's limit (107), or over a publish rate (111): never an internal error.
        ensure([107, 111].includes(reply.error.code), () => `publish of data nested ${depth} deep answered ${JSON.stringify(reply)}`);
      }
    }

    const owedOrphans = r.owed.filter((o) => o === 'orphan').length;
    this.lastCloses = this.connect ? r.closes : [...r.closes, 4500, 4003];
    this.lastFrame = describeFrame(r);
    if (sentinelOk) {
      for (const id of owedIds) ensure(replies.get(id)?.length === 1, () => `no reply to id ${id}`);
      ensure(orphans.length === owedOrphans, () => `${orphans.length} id-less errors, expected ${owedOrphans}`);
      ensure(!r.closes.includes(1007) && !r.closes.includes(1009), () => `the frame should have closed the connection with ${r.closes}`);
    } else {
      const code = (await c.closed).code;
      this.checkedClose = c;
      this.closes.set(code, (this.closes.get(code) ?? 0) + 1);
      ensure(DOCUMENTED_CLOSE_CODES.has(code), () => `undocumented close code ${code}`);
      const allowed = this.connect ? r.closes : [...r.closes, 4500, 4003];
      ensure(allowed.includes(code), () => `closed with ${code}, expected one of ${allowed}`);
      ensure(orphans.length <= owedOrphans, () => `${orphans.length} id-less errors, at most ${owedOrphans} expected`);
    }
  }
}

function describeFrame(r: Rendered): string {
  const t = r.text.length > 600 ? `${r.text.slice(0, 300)}…(${r.text.length} chars)…${r.text.slice(-100)}` : r.text;
  return JSON.stringify(t);
}

export async function runLane(lane: Lane, runs: number, seed: number, arb: fc.Arbitrary<Frame> = frame): Promise<void> {
  await lane.open();
  await fc.assert(
    fc.asyncProperty(arb, (fr) => lane.check(fr)),
    { numRuns: runs, seed, endOnFailure: true },
  );
}
