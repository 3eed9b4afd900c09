import type * as Y from 'yjs';
import type { Inbound } from './codec.js';
import { DocumentProvider, type DocumentLink, type DocumentOptions } from './document.js';
import { badArgument, checkChannel } from './validation.js';

/** What the documents need of their client: its connection, calls and error reports. */
export type DocumentsHost = Omit<DocumentLink, 'removeDocument'>;

/**
 * The documents a client syncs (`client.document`): one provider per name over the client's
 * connection, synced again after each reconnect and told when the connection goes.
 */
export class ClientDocuments {
  private readonly docs = new Map<string, DocumentProvider>();
  private readonly link: DocumentLink;

  constructor(host: DocumentsHost) {
    const docs = this.docs;
    this.link = {
      get connected() {
        return host.connected;
      },
      binary: host.binary,
      send: (method, params, callback) => host.send(method, params, callback),
      reportError: (err) => host.reportError(err),
      removeDocument: (provider) => {
        if (docs.get(provider.name) === provider) docs.delete(provider.name);
      },
    };
  }

  open(name: string, ydoc: Y.Doc, options: DocumentOptions): DocumentProvider {
    checkChannel(name);
    if (this.docs.has(name)) throw badArgument(`document: "${name}" is synced already (destroy its provider first)`);
    const provider = new DocumentProvider(name, ydoc, this.link, options);
    this.docs.set(name, provider);
    return provider;
  }

  /** After (re)connect: each document syncs again. */
  connected(): void {
    for (const doc of [...this.docs.values()]) doc._connected();
  }

  /** The connection went (for now, or for good). */
  lost(): void {
    for (const doc of this.docs.values()) doc._lost();
  }

  /** A `doc` push, to the provider of its channel. */
  push(channel: string, msg: Inbound): void {
    this.docs.get(channel)?._push(msg);
  }
}
