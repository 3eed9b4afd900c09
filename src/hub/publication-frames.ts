import type { ProtocolVersion } from '../codec/codec.js';
import { encodePublication, encodePublicationPush, encodeReplyWithPublications } from '../protocol/pushes.js';
import {
  encodePublicationPushV2,
  encodePublicationV2,
  encodeReplyWithPublicationsV2,
  withVisibleInfo,
  type PublicationInfoMode,
} from '../protocol/pushes-v2.js';
import type { Publication } from '../stream/types.js';

/**
 * One publication's push, encoded at most once per protocol version for a whole broadcast:
 * every receiver of a version gets the same Buffer (and MessagePack receivers the same
 * transcoding of it, codec/msgpack.ts). Built lazily: a broadcast with only v2 receivers never
 * encodes v1.
 */
export class PublicationFrames {
  private v1: Buffer | undefined;
  private v2: Buffer | undefined;

  constructor(
    private readonly channel: string,
    private readonly pub: Publication,
    /** The stream's epoch, sent only with the first publication of a stream. */
    private readonly epoch: string | undefined,
    private readonly mode: PublicationInfoMode,
  ) {}

  /** The push in protocol `version` (v1 when absent: SSE and JSON without a subprotocol). */
  frame(version: ProtocolVersion = 1): Buffer {
    if (version === 2) return (this.v2 ??= Buffer.from(encodePush(2, this.channel, this.pub, this.epoch, this.mode)));
    return (this.v1 ??= Buffer.from(encodePush(1, this.channel, this.pub, this.epoch, this.mode)));
  }
}

/** A publication push for one session (recovery pages); the first of a stream names its epoch. */
export function publicationPush(
  version: ProtocolVersion | undefined,
  channel: string,
  pub: Publication,
  epoch: string,
  mode: PublicationInfoMode,
): string {
  return encodePush(version, channel, pub, pub.offset === 1 ? epoch : undefined, mode);
}

/** The push in `version`, with `epoch` when given. */
function encodePush(
  version: ProtocolVersion | undefined,
  channel: string,
  pub: Publication,
  epoch: string | undefined,
  mode: PublicationInfoMode,
): string {
  return version === 2
    ? encodePublicationPushV2(channel, pub, epoch, mode)
    : encodePublicationPush(channel, withVisibleInfo(pub, mode), epoch);
}

/** One publication inside a reply, in the session's protocol version. */
export function publicationFor(version: ProtocolVersion | undefined, pub: Publication, mode: PublicationInfoMode): string {
  return version === 2 ? encodePublicationV2(pub, mode) : encodePublication(withVisibleInfo(pub, mode));
}

/** A reply holding publications (subscribe, history) in the session's protocol version. */
export function replyWithPublications(
  version: ProtocolVersion | undefined,
  id: number,
  result: Record<string, unknown>,
  pubs: readonly Publication[],
  mode: PublicationInfoMode,
): string {
  if (version === 2) return encodeReplyWithPublicationsV2(id, result, pubs, mode);
  return encodeReplyWithPublications(id, result, mode === 'full' ? pubs : pubs.map((p) => withVisibleInfo(p, mode)));
}
