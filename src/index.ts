export { createHub, Hub, type CreateHubOptions, type HubStats, type ListenResult } from './hub/hub.js';
export type { ClientContext, HubHooks, RpcHandler } from './hub/hooks.js';
export { resolveOptions, OptionsError, type HubOptions, type HubOptionsInput, type NamespaceOptions } from './config/options.js';
export { HubError, ERRORS, APP_ERROR_CODE_MIN, type ErrorCode, type WireError } from './protocol/errors.js';
export { CloseCode, UnsubscribeCode, shouldReconnect } from './protocol/close-codes.js';
export { PROTOCOL_VERSION } from './protocol/commands.js';
export { signToken, type SignTokenOptions } from './auth/token.js';
export type {
  Broker,
  BrokerEventHandler,
  ClientInfo,
  HealthChecker,
  HistoryOptions,
  HistoryResult,
  Publication,
  PublishOptions,
  PublishResult,
  StreamPosition,
} from './broker/broker.js';
export { MemoryBroker } from './broker/memory.js';
export type { PresenceStore, PresenceEntry } from './presence/presence-store.js';
