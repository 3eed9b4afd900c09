/**
 * The browser bundle of collaborative editing (`/collab-client.js`): Yjs, y-protocols' Awareness
 * and the SDK's DocumentProvider, from one copy of Yjs. Pages import everything from here, so
 * the Y.Doc they make and the provider's Yjs are the same instance.
 */
export * as Y from 'yjs';
export { Awareness } from 'y-protocols/awareness';
export { DocumentProvider, type DocumentProviderOptions } from './document.js';
