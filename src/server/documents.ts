import type { Logger } from 'pino';
import type { Broker } from '../broker/broker.js';
import { MemoryBroker } from '../broker/memory.js';
import type { CanEdit } from '../collab/access.js';
import type { DocStore } from '../collab/doc-store.js';
import { DocumentHost, type DocumentHooks } from '../collab/host.js';
import { DocumentRoutes } from '../collab/http-routes.js';
import { SessionDocuments } from '../collab/session-docs.js';
import type { HubOptions } from '../config/options.js';
import type { HubHooks } from '../hub/hooks.js';
import type { Node } from '../hub/node.js';
import type { Admission } from '../transport/admission.js';
import { CollabAcceptor } from '../transport/collab-websocket.js';

export interface DocumentParts {
  store: DocStore;
  broker: Broker;
  node: Node;
  admission: Admission;
  options: HubOptions;
  hooks: HubHooks;
  documentHooks: DocumentHooks & { canEdit?: CanEdit };
  logger: Logger;
}

/**
 * Collaborative documents of a hub (docs/collab.md): the host, its y-websocket endpoint and its
 * HTTP routes. Document updates between nodes travel on `collab|<name>` broker channels, outside
 * the Node's fan-out, so the broker's handler sends those to the host and the rest to the Node.
 */
export function openDocuments(p: DocumentParts): { documents: DocumentHost; acceptor: CollabAcceptor; routes: DocumentRoutes } {
  const { canEdit, ...docHooks } = p.documentHooks;
  const documents = new DocumentHost(p.store, p.broker, p.options.collab, docHooks, p.logger, !(p.broker instanceof MemoryBroker), p.node.metrics);
  p.node.metrics.countDocuments(() => documents.openCount);
  const node = p.node;
  p.broker.setHandler({
    onPublication: (channel, pub, epoch) =>
      DocumentHost.owns(channel) ? documents.onPublication(channel, pub) : node.onPublication(channel, pub, epoch),
    onEvent: (channel, event) => node.onEvent(channel, event),
    onControl: (command) => node.onControl(command),
  });
  const access = { hub: p.hooks, ...(canEdit ? { canEdit } : {}) };
  const acceptor = new CollabAcceptor(node, p.admission, documents, access, p.logger);
  // `doc` frames over regular connections: the same host, the same checks.
  node.documents = new SessionDocuments(documents, node.resolver, { ...access, timeoutMs: p.options.limits.hookTimeoutMs }, p.options.limits.maxChannelsPerConnection);
  const routes = new DocumentRoutes(documents, node.resolver, p.options.apiKey, p.options.collab.maxUpdateBytes);
  return { documents, acceptor, routes };
}
