/**
 * Switchboard client SDK: browsers (native WebSocket) and Node 20 (`ws`). No server code inside.
 * See docs/client.md.
 */
export { SwitchboardClient, type ClientOptions, type ClientEvents, type RpcOptions } from './client.js';
export type { ServerSubscriptionEvents } from './server-subscriptions.js';
export { Subscription } from './subscription.js';
export type { DocumentProvider, DocumentOptions, DocumentEvent } from './document.js';
export { Notifications } from './notifications.js';
export { ClientError, type WireError } from './errors.js';
export { Backoff, type BackoffOptions } from './backoff.js';
export {
  ClientErrorCode,
  CloseCode,
  ConnectionState,
  PROTOCOL_VERSION,
  ServerErrorCode,
  SubscriptionState,
  UnsubscribeCode,
  shouldReconnect,
  type ConnectionStateValue,
  type SubscriptionStateValue,
} from './constants.js';
export { decodeFrame } from './codec.js';
export { encodeUserId, decodeUserId, notificationsChannel, userChannel } from './user-channel.js';
export type {
  ConnectedInfo,
  HistoryOptions,
  HistoryResult,
  NotificationEvent,
  NotificationItem,
  NotificationListOptions,
  NotificationPage,
  PresenceEntry,
  PresenceResult,
  Publication,
  PublisherInfo,
  PublishOptions,
  PublishResult,
  ReadEvent,
  ReadState,
  RecoveryFailedContext,
  SettableStatus,
  StateChange,
  StatusEvent,
  StatusRecord,
  StreamPosition,
  SubscribedContext,
  SubscriptionHandlers,
  TypingEvent,
  UnsubscribedContext,
  UserStatus,
  WebSocketConstructor,
} from './types.js';
export type { ClientEvent, EmitOptions } from './types.js';
