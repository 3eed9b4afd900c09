/** RFC 6455 allows at most 123 bytes of close reason. */
const MAX_CLOSE_REASON_BYTES = 123;

/** A close reason cut to 123 bytes of UTF-8, never inside a character. */
export function clampReason(reason: string): string {
  if (Buffer.byteLength(reason) <= MAX_CLOSE_REASON_BYTES) return reason;
  let out = '';
  let bytes = 0;
  for (const ch of reason) {
    const n = Buffer.byteLength(ch);
    if (bytes + n > MAX_CLOSE_REASON_BYTES) break;
    out += ch;
    bytes += n;
  }
  return out;
}
