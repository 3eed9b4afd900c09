import { accessSync, constants } from 'node:fs';
import { z } from 'zod';

/** `host:port` of a Redis node or sentinel (a host name, IPv4, or a bracketed IPv6 address). */
export const HOST_PORT = /^(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9_.-]+):\d{1,5}$/;

const seedsSchema = z
  .array(z.string().regex(HOST_PORT, 'must be host:port'), { error: 'must be a list of host:port seed nodes (redisCluster, --redis-cluster or SWITCHBOARD_REDIS_CLUSTER)' })
  .min(1);

const tlsSchema = z
  .object({
    /** PEM file of the CA that signed the nodes' certificates; omitted: the system's CAs. */
    caFile: z.string().min(1).nullable().default(null),
    /** Name checked against the nodes' certificates (SNI); omitted: each node's host. */
    serverName: z.string().min(1).nullable().default(null),
    /** false accepts any certificate (tests only: no protection against a man in the middle). */
    rejectUnauthorized: z.boolean().default(true),
  })
  .strict();

/** `tls` as written: true (system CAs), false (none), or the settings. */
type TlsInput = boolean | z.input<typeof tlsSchema>;

const clusterObjectSchema = z
  .object({
    seeds: seedsSchema,
    /** ACL user (Redis 6+); needs `password`. */
    username: z.string().min(1).nullable().default(null),
    /** AUTH password of every node (`requirepass`, or the ACL user's). */
    password: z.string().min(1).nullable().default(null),
    /** TLS to every node: true (system CAs), or its settings; false or null: none. */
    tls: z.preprocess((v: TlsInput | null | undefined) => (v === true ? {} : v === false || v === undefined ? null : v), tlsSchema.nullable()),
  })
  .strict();

/** `redisCluster` as written: the seeds, or the object. */
export type RedisClusterInput = readonly string[] | (Omit<z.input<typeof clusterObjectSchema>, 'tls'> & { tls?: TlsInput | null });

/**
 * Redis Cluster: the seed nodes, or the seeds with credentials (ACL user / `requirepass`) and TLS,
 * used for every connection to every node (commands, shard subscribers, slot refreshes).
 * Always resolved to the object form.
 */
export const redisClusterSchema = z
  .preprocess((v: RedisClusterInput) => (Array.isArray(v) ? { seeds: v } : v), clusterObjectSchema)
  .superRefine((o, ctx) => {
    if (o.username !== null && o.password === null) {
      ctx.addIssue({ code: 'custom', path: ['password'], message: 'is needed with username' });
    }
    if (o.tls?.caFile) {
      try {
        accessSync(o.tls.caFile, constants.R_OK);
      } catch (err) {
        ctx.addIssue({ code: 'custom', path: ['tls', 'caFile'], message: `cannot read ${o.tls.caFile} (${(err as NodeJS.ErrnoException).code ?? 'error'})` });
      }
    }
  });
