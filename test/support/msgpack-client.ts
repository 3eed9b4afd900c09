import { decodeMulti, encode } from '@msgpack/msgpack';
import { WebSocket } from 'ws';

/** Anything the server sent, decoded by @msgpack/msgpack (not the library the server uses). */
export type Message = Record<string, any>;

/**
 * A raw MessagePack client of protocol v1 (`switchboard.v1.msgpack`) over `ws`: encodes commands
 * with @msgpack/msgpack, decodes every binary frame as concatenated MessagePack values, routes
 * replies by id, keeps everything else, answers pings.
 */
export class MsgpackClient {
  readonly messages: Message[] = [];
  /** Frames received, with whether each was binary. */
  readonly frames: Array<{ binary: boolean; values: number }> = [];
  closeInfo: { code: number; reason: string } | undefined;
  protocol = '';
  private nextId = 1;
  private readonly waiters = new Set<() => void>();

  private constructor(readonly ws: WebSocket) {
    ws.on('message', (data: Buffer, binary: boolean) => {
      const values = binary ? [...decodeMulti(data)] : [];
      this.frames.push({ binary, values: values.length });
      for (const v of values) {
        const m = v as Message;
        if (m.push === 'ping') ws.send(encode({ method: 'pong' }));
        this.messages.push(m);
      }
      this.notify();
    });
    ws.on('close', (code, reason) => {
      this.closeInfo = { code, reason: reason.toString() };
      this.notify();
    });
  }

  static open(url: string, protocols: string | string[] = 'switchboard.v1.msgpack'): Promise<MsgpackClient> {
    const ws = new WebSocket(url, protocols, { perMessageDeflate: false });
    const client = new MsgpackClient(ws);
    return new Promise((resolve, reject) => {
      ws.once('open', () => {
        client.protocol = ws.protocol;
        resolve(client);
      });
      ws.once('error', reject);
    });
  }

  private notify(): void {
    for (const w of [...this.waiters]) w();
  }

  id(): number {
    return this.nextId++;
  }

  /** Sends values as one binary frame, back to back. */
  send(...values: unknown[]): void {
    this.ws.send(Buffer.concat(values.map((v) => encode(v))), { binary: true });
  }

  waitFor(pred: (m: Message) => boolean, timeoutMs = 10_000): Promise<Message> {
    return new Promise((resolve, reject) => {
      const check = (): void => {
        const found = this.messages.find(pred);
        if (found) {
          cleanup();
          resolve(found);
        } else if (this.closeInfo) {
          cleanup();
          reject(new Error(`closed (${this.closeInfo.code} ${this.closeInfo.reason}) while waiting`));
        }
      };
      const timer = setTimeout(() => {
        cleanup();
        reject(new Error('timed out waiting for a message'));
      }, timeoutMs);
      const cleanup = (): void => {
        clearTimeout(timer);
        this.waiters.delete(check);
      };
      this.waiters.add(check);
      check();
    });
  }

  request(method: string, params?: unknown): Promise<Message> {
    const id = this.id();
    this.send(params === undefined ? { id, method } : { id, method, params });
    return this.waitFor((m) => m.id === id);
  }

  async call(method: string, params?: unknown): Promise<any> {
    const reply = await this.request(method, params);
    if (reply.error) throw new Error(`${reply.error.code}: ${reply.error.message}`);
    return reply.result;
  }

  close(): void {
    this.ws.terminate();
  }
}
