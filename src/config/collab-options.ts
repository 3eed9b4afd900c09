import { z } from 'zod';
import { positiveInt } from './option-primitives.js';

/** Collaborative documents (namespaces with `document: true`; docs/collab.md). */
export const collabSchema = z
  .object({
    /** Path prefix of the y-websocket-compatible endpoint: `<path>/<channel>`. */
    path: z.string().startsWith('/').default('/collab'),
    /** Largest single update (and WebSocket message) in bytes; larger is refused with 121. */
    maxUpdateBytes: positiveInt.default(1024 * 1024),
    /** Largest stored document (snapshot + log) in bytes; an update past it is refused with 121. */
    maxDocumentBytes: positiveInt.default(32 * 1024 * 1024),
    /** Documents open (in memory) on one node; one more is refused with 122 (temporary). */
    maxOpenDocuments: positiveInt.default(10_000),
    /** A document nobody has open stays in memory this long, then is unloaded. */
    idleUnloadMs: positiveInt.default(30_000),
    /** The update log is compacted into the snapshot after this many updates (once the log holds half the snapshot's bytes)… */
    compactAfterUpdates: positiveInt.default(500),
    /** …or this long after the last update (debounced). */
    compactDelayMs: positiveInt.default(2_000),
    /** With Redis: how often each node compares its open documents with the stored head (repairs lost deliveries). */
    resyncIntervalMs: positiveInt.default(5_000),
    /** Longest a document load may take; past it the open fails with 123 (temporary) and nothing is created. */
    loadTimeoutMs: positiveInt.default(10_000),
  })
  .strict();
