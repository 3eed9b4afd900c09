/**
 * The browser bundle of collaborative editing (`/collab-client.js`): Yjs, y-protocols' Awareness
 * and the SDK client (whose `client.document(name, ydoc)` syncs a Y.Doc over its connection),
 * from one copy of Yjs. Pages import everything from here, so the Y.Doc they make and the
 * provider's Yjs are the same instance.
 */
export * as Y from 'yjs';
export { Awareness } from 'y-protocols/awareness';
export { SwitchboardClient } from './client.js';
export { DocumentProvider, type DocumentOptions } from './document.js';
