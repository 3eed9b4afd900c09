import type { Session } from './session.js';

/**
 * What the hub needs of collaborative documents to serve `doc` frames over a regular
 * connection (docs/protocol.md, Documents): the collab layer implements it and is plugged into
 * the Node once it exists (`node.documents`), so hub/ never imports collab/.
 */
export interface DocumentFrames {
  /**
   * One y-protocols message of a session for a document (joining it on the first one):
   * resolves once handled (an update: once stored), rejects with a HubError.
   */
  receive(session: Session, channel: string, message: Uint8Array): Promise<void>;
  /** The session leaves one document (its awareness goes with it). */
  leave(session: Session, channel: string): void;
  /** The session closed: it leaves every document it had joined. */
  release(session: Session): void;
  /**
   * After a token refresh: the session leaves (a `left` push, `rejoin: false`) every document
   * its new identity may no longer subscribe to, as its channel subscriptions do.
   */
  reauthorize(session: Session): void;
}
