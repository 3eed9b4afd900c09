import type { ClientInfo, Publication } from '../stream/types.js';
import { encodeReplyWithPublications } from './pushes.js';

/**
 * Protocol v2 (docs/protocol.md, Protocol v2): publications in a compact form, everything else
 * as in v1 (protocol/pushes.ts). A publication push is one object with short keys:
 *
 *   {"p":<channel>,"o":<offset>[,"e":<epoch>],"d":<data>[,"u":<user>][,"c":<client>][,"k":<key>]}
 *
 * `p` marks it (no other server message has that key); `e` comes with the first publication of
 * a stream (offset 1), where v1 sends `epoch`; `u`/`c`/`k` are v1's `info.user`, `info.client`
 * and `info.key`, as far as the namespace's `publicationInfo` shows them. A publication inside a
 * reply (subscribe recovery, history) is the same object without `p` and `e`.
 */

/** What a namespace shows subscribers of a publication's publisher (`publicationInfo`). */
export type PublicationInfoMode = 'full' | 'user' | 'none';

/** The publisher info `mode` lets subscribers see (v1's `info`); `full` is the stored one. */
export function visibleInfo(info: ClientInfo | undefined, mode: PublicationInfoMode): ClientInfo | Omit<ClientInfo, 'client'> | undefined {
  if (!info || mode === 'full') return info;
  if (mode === 'none') return undefined;
  return info.key === undefined ? { user: info.user } : { user: info.user, key: info.key };
}

/** The publication as a v1 encoder must see it under `mode` (the same object under `full`). */
export function withVisibleInfo(pub: Publication, mode: PublicationInfoMode): Publication {
  if (!pub.info || mode === 'full') return pub;
  const info = visibleInfo(pub.info, mode);
  // A v1 `info` without `client` (mode `user`): the encoders copy whatever fields it has.
  return info ? { offset: pub.offset, data: pub.data, info: info as ClientInfo } : { offset: pub.offset, data: pub.data };
}

/** `,"u":…,"c":…,"k":…` as far as `mode` shows them ('' when nothing). */
function infoFields(info: ClientInfo | undefined, mode: PublicationInfoMode): string {
  if (!info || mode === 'none') return '';
  let s = `,"u":${JSON.stringify(info.user)}`;
  if (mode === 'full') s += `,"c":${JSON.stringify(info.client)}`;
  if (info.key !== undefined) s += `,"k":${JSON.stringify(info.key)}`;
  return s;
}

/** A v2 publication push; `epoch` only with the first publication of a stream. `data` is spliced in. */
export function encodePublicationPushV2(channel: string, pub: Publication, epoch: string | undefined, mode: PublicationInfoMode): string {
  let s = `{"p":${JSON.stringify(channel)},"o":${pub.offset}`;
  if (epoch !== undefined) s += `,"e":${JSON.stringify(epoch)}`;
  return `${s},"d":${pub.data}${infoFields(pub.info, mode)}}`;
}

/** A v2 publication inside a reply. */
export function encodePublicationV2(pub: Publication, mode: PublicationInfoMode): string {
  return `{"o":${pub.offset},"d":${pub.data}${infoFields(pub.info, mode)}}`;
}

/** A reply whose result holds publications (v2 form), the rest of the result as in v1. */
export function encodeReplyWithPublicationsV2(
  id: number,
  result: Record<string, unknown>,
  pubs: readonly Publication[],
  mode: PublicationInfoMode,
): string {
  return encodeReplyWithPublications(id, result, pubs, (p) => encodePublicationV2(p, mode));
}
