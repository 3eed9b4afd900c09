/**
 * User ids in channel names, the SDK's copy of the server's encoding (src/channels/channels.ts;
 * the SDK imports nothing from the server, and a test keeps the two in agreement). After the
 * `#` of a user-limited channel (`dm:#alice,bob`) each user id is written with the bytes
 * `A-Z a-z 0-9 _ . @ -` as they are and every other UTF-8 byte (`~` included) as `~XX`,
 * uppercase hex: `auth0|abc` → `auth0~7Cabc`, `a,b` → `a~2Cb`, `José` → `Jos~C3~A9`.
 */

const USER_ID_KEEP = /^[A-Za-z0-9_.@-]$/;
const USER_ID_ENCODED = /^(?:[A-Za-z0-9_.@-]|~[0-9A-F]{2})*$/;
const HEX = '0123456789ABCDEF';

const hexByte = (byte: number): string => `~${HEX[byte >> 4]}${HEX[byte & 15]}`;

/**
 * A user id as written in a channel name. A lone surrogate (possible in a JS string, not in
 * Unicode) is written as its 3-byte WTF-8 form, so it collides with no other id.
 */
export function encodeUserId(user: string): string {
  let out = '';
  for (const ch of user) {
    const cp = ch.codePointAt(0)!;
    if (cp < 0x80) out += USER_ID_KEEP.test(ch) ? ch : hexByte(cp);
    else if (cp < 0x800) out += hexByte(0xc0 | (cp >> 6)) + hexByte(0x80 | (cp & 63));
    else if (cp < 0x10000) out += hexByte(0xe0 | (cp >> 12)) + hexByte(0x80 | ((cp >> 6) & 63)) + hexByte(0x80 | (cp & 63));
    else
      out += hexByte(0xf0 | (cp >> 18)) + hexByte(0x80 | ((cp >> 12) & 63)) + hexByte(0x80 | ((cp >> 6) & 63)) + hexByte(0x80 | (cp & 63));
  }
  return out;
}

/** The user id an encoded one stands for; undefined unless it is exactly what `encodeUserId` writes. */
export function decodeUserId(encoded: string): string | undefined {
  if (!USER_ID_ENCODED.test(encoded)) return undefined;
  if (!encoded.includes('~')) return encoded;
  const bytes: number[] = [];
  for (let i = 0; i < encoded.length; i++) {
    if (encoded[i] === '~') {
      const byte = parseInt(encoded.slice(i + 1, i + 3), 16);
      if (USER_ID_KEEP.test(String.fromCharCode(byte))) return undefined;
      bytes.push(byte);
      i += 2;
    } else {
      bytes.push(encoded.charCodeAt(i));
    }
  }
  try {
    return new TextDecoder('utf-8', { fatal: true, ignoreBOM: true }).decode(new Uint8Array(bytes));
  } catch {
    return undefined;
  }
}

/** The channel limited to `users`: `namespace:#user1,user2`, each id encoded. */
export function userChannel(namespace: string, users: readonly string[]): string {
  return `${namespace}:#${users.map(encodeUserId).join(',')}`;
}

/** The user's notifications channel, `notifications:#<encoded user>`. */
export function notificationsChannel(user: string): string {
  return userChannel('notifications', [user]);
}
