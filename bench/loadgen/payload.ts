/**
 * The 130-byte message payload: `~T`, the send time in microseconds (16 digits), `#`, a sequence
 * number (10 digits), then padding. The `~` byte appears nowhere else in any server's
 * envelope, so receivers count messages by scanning for it (memchr speed, no JSON decode) and
 * read the send time of sampled messages right after it.
 */
export const PAYLOAD_BYTES = 130;
export const MARKER_BYTE = 0x7e; // '~'
const T_BYTE = 0x54; // 'T'
const STAMP_DIGITS = 16;
const SEQ_DIGITS = 10;
const PAD = 'x'.repeat(PAYLOAD_BYTES - 2 - STAMP_DIGITS - 1 - SEQ_DIGITS);

/**
 * Microseconds on the monotonic clock (CLOCK_MONOTONIC), which every process on the machine
 * shares, so a publisher's stamp can be compared with a receiver's clock in another process.
 */
export function nowUs(): number {
  const [s, ns] = process.hrtime();
  return s * 1e6 + Math.floor(ns / 1e3);
}

export function makePayload(seq: number, stampUs: number): string {
  return `~T${String(stampUs).padStart(STAMP_DIGITS, '0')}#${String(seq % 1e10).padStart(SEQ_DIGITS, '0')}${PAD}`;
}

/** Reads the send stamp of the marker at `pos` (the `~`); NaN if the bytes are not a stamp. */
export function readStamp(buf: Buffer, pos: number): number {
  if (buf[pos + 1] !== T_BYTE) return Number.NaN;
  let v = 0;
  const end = pos + 2 + STAMP_DIGITS;
  if (end > buf.length) return Number.NaN;
  for (let i = pos + 2; i < end; i++) {
    const d = buf[i]! - 48;
    if (d < 0 || d > 9) return Number.NaN;
    v = v * 10 + d;
  }
  return v;
}

/** How many payloads a frame holds. */
export function countMarkers(frame: Buffer): number {
  let n = 0;
  let p = frame.indexOf(MARKER_BYTE);
  while (p !== -1) {
    n += 1;
    p = frame.indexOf(MARKER_BYTE, p + 2);
  }
  return n;
}
