/**
 * Small helpers for the test/core-*.test.ts suites: big payloads, an SSE stream reader, raw
 * HTTP over a socket, and the ordered view of a recovery (a TCP cut: support/tcp-proxy.ts).
 */
import { connect } from 'node:net';
import type { ProtocolClient, ServerMessage } from './protocol-client.js';

/** A JSON payload of about `bytes` bytes carrying `n`. */
export function payload(n: number, bytes: number): { n: number; pad: string } {
  return { n, pad: 'x'.repeat(bytes) };
}

/** One decoded Server-Sent Event. */
export interface SseEvent {
  event: string;
  data: string;
  id?: string;
}

/**
 * Reads a `text/event-stream` response as it arrives: `events` in order, `ended` once the
 * server ended the response (or the read failed). `cancel()` stops reading and closes it.
 */
export class SseReader {
  readonly events: SseEvent[] = [];
  ended = false;
  endError: unknown;
  private buffer = '';
  private readonly reader: ReadableStreamDefaultReader<Uint8Array>;
  private readonly listeners = new Set<() => void>();
  private readonly done: Promise<void>;

  constructor(readonly response: Response) {
    this.reader = response.body!.getReader();
    this.done = this.pump();
  }

  private async pump(): Promise<void> {
    const decoder = new TextDecoder();
    try {
      for (;;) {
        const { value, done } = await this.reader.read();
        if (done) break;
        this.buffer += decoder.decode(value, { stream: true });
        this.parse();
        this.notify();
      }
    } catch (err) {
      this.endError = err;
    }
    this.ended = true;
    this.notify();
  }

  private parse(): void {
    let sep: number;
    while ((sep = this.buffer.indexOf('\n\n')) !== -1) {
      const block = this.buffer.slice(0, sep);
      this.buffer = this.buffer.slice(sep + 2);
      let event = 'message';
      let id: string | undefined;
      const data: string[] = [];
      let any = false;
      for (const line of block.split('\n')) {
        if (line === '' || line.startsWith(':')) continue;
        const colon = line.indexOf(':');
        const field = colon === -1 ? line : line.slice(0, colon);
        let value = colon === -1 ? '' : line.slice(colon + 1);
        if (value.startsWith(' ')) value = value.slice(1);
        if (field === 'event') event = value;
        else if (field === 'data') {
          data.push(value);
          any = true;
        } else if (field === 'id') id = value;
      }
      if (any) this.events.push(id === undefined ? { event, data: data.join('\n') } : { event, data: data.join('\n'), id });
    }
  }

  private notify(): void {
    for (const l of [...this.listeners]) l();
  }

  /** Events named `name`, in order. */
  named(name: string): SseEvent[] {
    return this.events.filter((e) => e.event === name);
  }

  /** Resolves once `check` returns something other than undefined/false. */
  until<T>(check: () => T | undefined | false, what: string, timeoutMs = 10_000): Promise<T> {
    const now = check();
    if (now !== undefined && now !== false) return Promise.resolve(now);
    return new Promise((resolve, reject) => {
      const listener = (): void => {
        const v = check();
        if (v === undefined || v === false) {
          if (this.ended) {
            cleanup();
            reject(new Error(`stream ended while waiting for ${what} (${this.events.length} events)`));
          }
          return;
        }
        cleanup();
        resolve(v);
      };
      const timer = setTimeout(() => {
        cleanup();
        reject(new Error(`timed out after ${timeoutMs} ms waiting for ${what} (${this.events.length} events, ended ${this.ended})`));
      }, timeoutMs);
      const cleanup = (): void => {
        clearTimeout(timer);
        this.listeners.delete(listener);
      };
      this.listeners.add(listener);
    });
  }

  /** Resolves when the server ended the stream. */
  waitForEnd(timeoutMs = 10_000): Promise<void> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`stream not ended after ${timeoutMs} ms`)), timeoutMs);
      void this.done.then(() => {
        clearTimeout(timer);
        resolve();
      });
    });
  }

  async cancel(): Promise<void> {
    try {
      await this.reader.cancel();
    } catch {
      // already gone
    }
  }
}

/** Opens an SSE stream with fetch and returns its reader (the caller checks the status). */
export async function openSse(url: string, headers: Record<string, string> = {}): Promise<SseReader> {
  const res = await fetch(url, { headers });
  return new SseReader(res);
}

/** Sends `request` as raw bytes and resolves with everything the server sent until it closed (or `timeoutMs`). */
export function rawHttp(port: number, request: string, timeoutMs = 5_000): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, '127.0.0.1');
    let text = '';
    const timer = setTimeout(() => {
      socket.destroy();
      resolve(text);
    }, timeoutMs);
    socket.setEncoding('utf8');
    socket.on('data', (d: string) => {
      text += d;
      // One response is enough: stop once a complete one (headers + Content-Length body) is in.
      const end = text.indexOf('\r\n\r\n');
      if (end !== -1) {
        const len = /content-length:\s*(\d+)/i.exec(text.slice(0, end))?.[1];
        if (len !== undefined && Buffer.byteLength(text.slice(end + 4)) >= Number(len)) {
          clearTimeout(timer);
          socket.destroy();
          resolve(text);
        }
      }
    });
    socket.on('error', (err) => {
      clearTimeout(timer);
      if (text) resolve(text);
      else reject(err);
    });
    socket.on('close', () => {
      clearTimeout(timer);
      resolve(text);
    });
    socket.write(request);
  });
}

/**
 * What a client got for one resubscribe: the reply to command `id`, then every `pub` push of
 * `channel` after it (in arrival order). `from` is the index in `messages` to start from.
 */
export function afterReply(c: ProtocolClient, id: number, channel: string, from = 0): { reply: ServerMessage; pushes: ServerMessage[] } {
  const at = c.messages.findIndex((m, i) => i >= from && m.id === id && m.push === undefined);
  if (at === -1) throw new Error(`no reply to ${id}`);
  const before = c.messages.slice(from, at).filter((m) => m.push === 'pub' && m.channel === channel);
  if (before.length > 0) throw new Error(`${before.length} pub pushes of ${channel} came before the reply to ${id}`);
  return { reply: c.messages[at]!, pushes: c.messages.slice(at + 1).filter((m) => m.push === 'pub' && m.channel === channel) };
}

/** 1-based consecutive integers from `first` to `last`. */
export function range(first: number, last: number): number[] {
  return Array.from({ length: Math.max(0, last - first + 1) }, (_, i) => first + i);
}

/** Bytes of the `data` of publications as the server counts a page (the JSON text length). */
export function dataBytes(pubs: Array<{ data: unknown }>): number {
  return pubs.reduce((n, p) => n + JSON.stringify(p.data).length, 0);
}
