import type { Inbound } from './codec.js';
import { ClientError } from './errors.js';

export type ReplyCallback = (err: ClientError | undefined, result: unknown) => void;

interface Pending {
  method: string;
  callback: ReplyCallback;
  timer?: ReturnType<typeof setTimeout>;
}

/**
 * The commands sent on the current transport and waiting for their reply, by id. A reply runs
 * its command's callback once: with the result, the server's error, TIMEOUT after the command's
 * timeout (a later reply is then ignored), or a temporary DISCONNECTED when the transport goes.
 */
export class ReplyTable {
  private lastId = 0;
  private readonly pending = new Map<number, Pending>();

  /** The id of the next command (ids increase for the life of the client, across transports). */
  nextId(): number {
    return ++this.lastId;
  }

  /** Waits for the reply to command `id`; after `timeoutMs` (when given) the callback gets TIMEOUT. */
  expect(id: number, method: string, callback: ReplyCallback, timeoutMs?: number): void {
    const pending: Pending = { method, callback };
    if (timeoutMs !== undefined && timeoutMs > 0 && Number.isFinite(timeoutMs)) {
      pending.timer = setTimeout(() => {
        if (this.pending.get(id) !== pending) return;
        this.pending.delete(id);
        callback(ClientError.timeout(method, timeoutMs), undefined);
      }, timeoutMs);
    }
    this.pending.set(id, pending);
  }

  /** Hands a reply (a message with an `id`) to its command; ignored if that one timed out earlier. */
  settle(id: number, msg: Inbound): void {
    const pending = this.pending.get(id);
    if (!pending) return;
    this.pending.delete(id);
    clearTimeout(pending.timer);
    if (msg.error !== undefined) pending.callback(ClientError.fromWire(msg.error, pending.method), undefined);
    else pending.callback(undefined, msg.result);
  }

  /** The transport is gone: every command still waiting gets a temporary DISCONNECTED error. */
  disconnectAll(): void {
    const pending = [...this.pending.values()];
    this.pending.clear();
    for (const p of pending) {
      clearTimeout(p.timer);
      p.callback(ClientError.disconnected(p.method), undefined);
    }
  }
}
