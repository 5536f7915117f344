// WireGuard keys: Curve25519 private/public keys and preshared keys, 32 bytes each, written as
// standard base64 (44 characters ending in "="), exactly as `wg genkey`, `wg pubkey` and
// `wg genpsk` print them.
import { randomBytes, x25519PublicKey } from "./primitives.ts";

export const KEY_LENGTH = 32;
export const KEY_BASE64_LENGTH = 44;

/** A new private key, clamped as `wg genkey` does. */
export function generatePrivateKey(): Uint8Array {
  const k = randomBytes(KEY_LENGTH);
  k[0] &= 248;
  k[31] = (k[31] & 127) | 64;
  return k;
}

/** The public key of a private key (same result as `wg pubkey`, clamped or not). */
export function publicKeyOf(privateKey: Uint8Array): Uint8Array {
  return x25519PublicKey(privateKey);
}

/** A new random preshared key, like `wg genpsk`. */
export function generatePresharedKey(): Uint8Array {
  return randomBytes(KEY_LENGTH);
}

/** The 44-character base64 text of a 32-byte key. */
export function encodeKey(bytes: Uint8Array): string {
  if (bytes.length !== KEY_LENGTH) throw new RangeError(`a WireGuard key is 32 bytes, got ${bytes.length}`);
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.length).toString("base64");
}

// 42 free characters, then one whose low two bits are zero (the 256th bit is padding), then "=".
const CANONICAL = /^[A-Za-z0-9+/]{42}[AEIMQUYcgkosw048]=$/;

/** The 32 bytes of a base64 key, or the reason the text is not one (surrounding blanks allowed). */
export function decodeKey(text: string): Uint8Array | string {
  const t = text.trim();
  if (t.length !== KEY_BASE64_LENGTH) {
    return `not a WireGuard key: expected ${KEY_BASE64_LENGTH} base64 characters, got ${t.length}`;
  }
  if (!CANONICAL.test(t)) {
    if (/^[A-Za-z0-9+/]{43}=$/.test(t)) {
      return "not a WireGuard key: the last base64 character before \"=\" carries bits beyond 32 bytes";
    }
    if (/^[A-Za-z0-9+/]{42}==$/.test(t)) return "not a WireGuard key: decodes to 31 bytes, expected 32";
    if (/^[A-Za-z0-9+/]{44}$/.test(t)) return "not a WireGuard key: decodes to 33 bytes, expected 32";
    return "not a WireGuard key: invalid base64 (expected A-Z a-z 0-9 + / and a final \"=\")";
  }
  const decoded = Buffer.from(t, "base64");
  const out = new Uint8Array(KEY_LENGTH);
  out.set(decoded);
  decoded.fill(0);
  return out;
}

/**
 * The Curve25519 points of small order (libsodium's list: 0, 1, the two points of order 8, and
 * p-1, p, p+1), little-endian. X25519 with any of them gives an all-zero shared secret, which
 * WireGuard refuses, so a peer with such a public key can never complete a handshake.
 */
const LOW_ORDER_POINTS = [
  "0000000000000000000000000000000000000000000000000000000000000000",
  "0100000000000000000000000000000000000000000000000000000000000000",
  "e0eb7a7c3b41b8ae1656e3faf19fc46ada098deb9c32b1fd866205165f49b800",
  "5f9c95bca3508c24b1d0b1559c83ef5b04445cc4581c8e86d8224eddd09f1157",
  "ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
  "edffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
  "eeffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
].map((hex) => Buffer.from(hex, "hex"));

/** True if `publicKey` is a low-order point (X25519 ignores the top bit, so it is ignored here too). */
export function isLowOrderPoint(publicKey: Uint8Array): boolean {
  if (publicKey.length !== KEY_LENGTH) return false;
  return LOW_ORDER_POINTS.some((point) => {
    let diff = (point[31] ^ publicKey[31]) & 0x7f;
    for (let i = 0; i < 31; i++) diff |= point[i] ^ publicKey[i];
    return diff === 0;
  });
}
