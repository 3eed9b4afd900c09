import { assertCanSubscribe, type ChannelResolver } from '../channels/channels.js';
import type { DocumentFrames } from '../hub/document-frames.js';
import type { HubHooks } from '../hub/hooks.js';
import type { Session } from '../hub/session.js';
import { HubError } from '../protocol/errors.js';
import { documentAccess, type CanEdit } from './access.js';
import type { DocPeer, HostedDocument } from './document.js';
import type { DocumentHost } from './host.js';

/**
 * The `doc` push of one y-protocols message, encoded once per message: a broadcast's message
 * object is the same for every peer, so every SDK connection gets the same Buffer (and every
 * MessagePack one the same transcoded bytes, codec/msgpack.ts).
 */
const frames = new WeakMap<Uint8Array, Buffer>();

function docPush(channel: string, message: Uint8Array): Buffer {
  let frame = frames.get(message);
  if (!frame) {
    const b64 = Buffer.from(message.buffer, message.byteOffset, message.byteLength).toString('base64');
    frame = Buffer.from(`{"push":"doc","channel":${JSON.stringify(channel)},"message":{"$binary":"${b64}"}}`);
    frames.set(message, frame);
  }
  return frame;
}

/** A session's membership of one document, as a peer of the DocumentHost. */
class SessionPeer implements DocPeer {
  doc: HostedDocument | undefined;
  /** The join (access check, load), which messages sent meanwhile wait for. */
  joining: Promise<HostedDocument> | undefined;

  constructor(
    private readonly session: Session,
    readonly channel: string,
    readonly readOnly: boolean,
    private readonly gone: (peer: SessionPeer, code: number, reason: string) => void,
  ) {}

  get user(): string {
    return this.session.user;
  }

  get client(): string {
    return this.session.id;
  }

  send(message: Uint8Array): void {
    // The session's queue applies the usual backpressure (a slow consumer is closed, 4001).
    if (!this.session.closed) this.session.push('doc', docPush(this.channel, message));
  }

  /** The host drops this peer (its store failed): the client is told and joins again. */
  close(code: number, reason: string): void {
    this.gone(this, code, reason);
  }
}

/**
 * Documents over regular connections (`doc` frames, docs/collab.md): each session joins a
 * document with its first message for it, after the usual checks (documentAccess: namespace
 * `document: true`, subscribe permission, `onSubscribe`, and publish permission or `canEdit`
 * for writing), at most `limits.maxChannelsPerConnection` documents per session. The sync itself
 * is the DocumentHost's, the same code path as the y-websocket endpoint.
 */
export class SessionDocuments implements DocumentFrames {
  private readonly bySession = new Map<Session, Map<string, SessionPeer>>();

  constructor(
    private readonly host: DocumentHost,
    private readonly resolver: ChannelResolver,
    private readonly hooks: { hub: HubHooks; canEdit?: CanEdit; timeoutMs: number },
    private readonly maxPerSession: number,
  ) {}

  async receive(session: Session, channel: string, message: Uint8Array): Promise<void> {
    const peer = this.peers(session).get(channel) ?? (await this.join(session, channel));
    const doc = peer.doc ?? (await peer.joining!);
    // The session left (or closed) while the document loaded.
    if (this.bySession.get(session)?.get(channel) !== peer) throw new HubError(112, `not in document ${channel}: joined again meanwhile or left`);
    await doc.receive(peer, message);
  }

  leave(session: Session, channel: string): void {
    const peers = this.bySession.get(session);
    const peer = peers?.get(channel);
    if (!peer) return;
    peers!.delete(channel);
    if (peers!.size === 0) this.bySession.delete(session);
    this.detach(peer);
  }

  release(session: Session): void {
    const peers = this.bySession.get(session);
    this.bySession.delete(session);
    for (const peer of peers?.values() ?? []) {
      try {
        this.detach(peer);
      } catch {
        // The next peer still leaves.
      }
    }
  }

  reauthorize(session: Session): void {
    const identity = session.identity ?? { user: '', channels: [] };
    for (const channel of [...this.peers(session).keys()]) {
      try {
        assertCanSubscribe(this.resolver.resolve(channel), identity.user, identity.channels);
      } catch (err) {
        const refusal = err instanceof HubError ? { code: err.code, message: err.message } : { code: 103, message: 'permission denied' };
        this.leave(session, channel);
        this.pushLeft(session, channel, { ...refusal, message: `no longer permitted by the refreshed token: ${refusal.message}`, rejoin: false });
      }
    }
  }

  private pushLeft(session: Session, channel: string, left: { code: number; message: string; closeCode?: number; rejoin: boolean }): void {
    if (!session.closed) session.push('doc', Buffer.from(JSON.stringify({ push: 'doc', channel, left })));
  }

  private peers(session: Session): Map<string, SessionPeer> {
    return this.bySession.get(session) ?? new Map<string, SessionPeer>();
  }

  private async join(session: Session, channel: string): Promise<SessionPeer> {
    if (this.peers(session).size >= this.maxPerSession) {
      throw new HubError(106, `too many documents on this connection (limits.maxChannelsPerConnection ${this.maxPerSession})`);
    }
    const identity = session.identity ?? { user: '', channels: [] };
    const access = await documentAccess(this.resolver, channel, identity, session.id, session.headers, this.hooks, session.transportKind);
    if (session.closed) throw new HubError(110, 'connection closed');
    // Two first messages raced through the access check: the first one's peer wins.
    const existing = this.bySession.get(session)?.get(channel);
    if (existing) return existing;
    const peer = new SessionPeer(session, channel, access.readOnly, (p, code, reason) => this.dropped(session, p, code, reason));
    let peers = this.bySession.get(session);
    if (!peers) this.bySession.set(session, (peers = new Map()));
    peers.set(channel, peer);
    peer.joining = this.host.join(channel, peer).then(
      (doc) => {
        if (this.bySession.get(session)?.get(channel) !== peer) {
          this.host.leave(doc, peer);
        } else {
          peer.doc = doc;
        }
        return doc;
      },
      (err: unknown) => {
        if (this.bySession.get(session)?.get(channel) === peer) this.leave(session, channel);
        throw err;
      },
    );
    return peer;
  }

  private detach(peer: SessionPeer): void {
    if (peer.doc) this.host.leave(peer.doc, peer);
    // A join still loading leaves when it lands (it finds the peer gone).
  }

  /** The host dropped a peer (a store failure): it leaves, and the client is told to join again. */
  private dropped(session: Session, peer: SessionPeer, code: number, reason: string): void {
    if (this.bySession.get(session)?.get(peer.channel) !== peer) return;
    this.leave(session, peer.channel);
    const error = /^\d{3} /.test(reason) ? { code: Number(reason.slice(0, 3)), message: reason.slice(4) } : { code: 123, message: reason };
    this.pushLeft(session, peer.channel, { ...error, closeCode: code, rejoin: true });
  }
}
