import type { Logger } from 'pino';
import type { Broker } from '../broker/broker.js';
import type { CanEdit } from '../collab/access.js';
import type { DocStore } from '../collab/doc-store.js';
import type { DocumentHooks } from '../collab/host.js';
import type { HubOptionsInput } from '../config/options.js';
import type { HubHooks } from '../hub/hooks.js';
import type { PresenceStore } from '../presence/presence-store.js';
import type { Store } from '../store/store.js';

/** What `createHub` takes, what `hub.listen` resolves with, and what `hub.stats()` reports. */
export interface CreateHubOptions extends Omit<HubOptionsInput, 'store'> {
  hooks?: HubHooks;
  logger?: Logger;
  /** A broker to use instead of the embedded one (memory, or SQLite under dataDir). */
  broker?: Broker;
  presence?: PresenceStore;
  /**
   * Read positions and user status: a Store of your own, or `"postgres"` (see `postgres`), or
   * `"auto"` (default: Redis with redisUrl, else SQLite under dataDir, or memory).
   */
  store?: Store | HubOptionsInput['store'];
  /** Hooks of collaborative documents (docs/collab.md): load, change, store, and who may edit. */
  documentHooks?: DocumentHooks & { canEdit?: CanEdit };
  /** Where documents are kept instead of the default (Redis with redisUrl, SQLite under dataDir, or memory). */
  documentStore?: DocStore;
}

export interface ListenResult {
  port: number;
  /** WebSocket URL. */
  url: string;
  /** Base URL of the HTTP API and pages. */
  httpUrl: string;
  /** Base URL of the admin listener (metrics, health), when `adminPort` is set. */
  adminUrl?: string;
}

export interface HubStats {
  connections: number;
  /** Outbound bytes queued in this process for all connections. */
  queuedBytes: number;
  /** Channels with at least one local subscriber. */
  channels: number;
}
