import { z } from 'zod';
import { namespaceProxySchema } from './backend-options.js';
import { nonNegativeInt, positiveInt } from './option-primitives.js';

/** Options of one namespace (its channels' history, presence, permissions, delivery and hooks). */
export const namespaceSchema = z
  .object({
    history: z
      .object({
        /** Publications kept per channel; 0 turns history (and offsets) off. */
        size: nonNegativeInt.default(100),
        /** Seconds a publication stays in history. */
        ttlSeconds: positiveInt.default(600),
        /** Seconds a channel's position (offset, epoch) outlives its last publication. */
        metaTtlSeconds: positiveInt.default(86_400),
      })
      .strict()
      .prefault({}),
    /** Whether subscribe may recover missed publications from history. */
    recover: z.boolean().default(true),
    /** Whether the channel keeps a presence set. */
    presence: z.boolean().default(false),
    /** Whether subscribers get join/leave pushes (needs presence). */
    joinLeave: z.boolean().default(false),
    /** Whether subscribers may send typing signals (ephemeral, throttled, never stored). */
    typing: z.boolean().default(false),
    /** Whether marking a channel read pushes a `read` event to its subscribers. */
    readReceipts: z.boolean().default(false),
    /** Who may publish from a client connection. */
    clientPublish: z.enum(['none', 'subscribers', 'any']).default('subscribers'),
    /**
     * Who may subscribe: `authenticated` (any connected user), or `claim` (only connections whose
     * JWT `channels` claim lists the channel or a matching `namespace:*` pattern).
     */
    subscribe: z.enum(['authenticated', 'claim']).default('authenticated'),
    /**
     * Whether the namespace's channels are Yjs documents (docs/collab.md), served at
     * `collab.path/<channel>`. Subscribers read them; publishers (clientPublish) edit them.
     */
    document: z.boolean().default(false),
    /** Proxy endpoints of this namespace, overriding the global `proxy.subscribe` / `proxy.publish`. */
    proxy: namespaceProxySchema.optional(),
    /** Webhook events of this namespace: `publication` sends every client publication. */
    webhooks: z.object({ publication: z.boolean().default(false) }).strict().prefault({}),
    /**
     * `all`: every publication reaches every subscriber (a slow one is disconnected at the queue
     * cap). `latest` (latest-value channels): a subscriber past half its queue cap keeps only
     * the newest publication per channel, or per publisher-given `key`, and is never
     * disconnected for them; a subscribe gets the latest publication per key instead of a replay.
     */
    delivery: z.enum(['all', 'latest']).default('all'),
    /**
     * Whether subscribers may send ephemeral client events (`emit`: no history, no offset, no
     * reply; at most once, latest wins; limits.clientEventRate per connection).
     */
    clientEvents: z.boolean().default(false),
    /**
     * What publications tell subscribers of their publisher (pushes, subscribe and history
     * replies, every protocol version): `full` (user and client id; the default), `user` (the
     * user only) or `none`. The conflation key of a latest-value namespace always travels with
     * the publisher info, so `delivery: "latest"` needs `full` or `user`.
     */
    publicationInfo: z.enum(['full', 'user', 'none']).default('full'),
  })
  .strict()
  .superRefine((ns, ctx) => {
    if (ns.joinLeave && !ns.presence) {
      ctx.addIssue({ code: 'custom', path: ['joinLeave'], message: 'joinLeave needs presence: true' });
    }
    if (ns.publicationInfo === 'none' && ns.delivery === 'latest') {
      ctx.addIssue({
        code: 'custom',
        path: ['publicationInfo'],
        message: 'delivery "latest" sends the conflation key in the publication info: use "full" or "user"',
      });
    }
    if (ns.history.metaTtlSeconds < ns.history.ttlSeconds) {
      ctx.addIssue({ code: 'custom', path: ['history', 'metaTtlSeconds'], message: 'must be at least history.ttlSeconds' });
    }
  });
