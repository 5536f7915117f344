// The text forms of values in the WireGuard cross-platform UAPI ("key=value" lines): hex keys,
// unsigned decimal numbers, names, and the errno line that ends every answer.
import { ControlError, UAPI_EINVAL } from "./model.ts";
import { MAX_PEER_NAME_BYTES } from "../config/model.ts";

const KEY_BYTES = 32;
const HEX = /^[0-9a-fA-F]{64}$/;

/** A 32-byte key as 64 lowercase hex digits (what wireguard-go writes). */
export function keyToHex(key: Uint8Array): string {
  return Buffer.from(key.buffer, key.byteOffset, key.byteLength).toString("hex");
}

/** 64 hex digits (either case, as Go's hex.DecodeString takes) -> 32 bytes; throws EINVAL. */
export function keyFromHex(text: string, what: string): Uint8Array {
  if (!HEX.test(text)) {
    const why = /^[0-9a-fA-F]*$/.test(text) ? `${text.length} hex digits, expected 64` : "not hex";
    throw new ControlError(UAPI_EINVAL, `${what}: ${why}`);
  }
  return new Uint8Array(Buffer.from(text, "hex"));
}

export function isZeroKey(key: Uint8Array): boolean {
  let acc = 0;
  for (let i = 0; i < key.length; i++) acc |= key[i];
  return acc === 0;
}

export const ZERO_KEY_HEX = "0".repeat(KEY_BYTES * 2);

/**
 * An unsigned decimal no larger than `max`, as Go's strconv.ParseUint(value, 10, bits) accepts it:
 * digits only (no sign, no blanks), leading zeros allowed. Throws EINVAL.
 */
export function parseUnsigned(text: string, max: number, what: string): number {
  if (!/^\d+$/.test(text)) throw new ControlError(UAPI_EINVAL, `${what}: "${text}" is not an unsigned decimal number`);
  const value = Number(text);
  if (value > max) throw new ControlError(UAPI_EINVAL, `${what}: ${text} is out of range (0-${max})`);
  return value;
}

/** The only value the boolean keys (replace_peers, remove, …) take; wireguard-go refuses "false" too. */
export function parseTrue(text: string, what: string): true {
  if (text !== "true") throw new ControlError(UAPI_EINVAL, `${what}: invalid value "${text}" (only "true" is allowed)`);
  return true;
}

/** A wontun handshake name: 1-100 bytes of UTF-8, no control characters, no outer blanks. */
export function parseName(text: string): string {
  const bytes = new TextEncoder().encode(text).length;
  if (bytes === 0) throw new ControlError(UAPI_EINVAL, "name: empty");
  if (bytes > MAX_PEER_NAME_BYTES) {
    throw new ControlError(UAPI_EINVAL, `name: ${bytes} bytes long, at most ${MAX_PEER_NAME_BYTES} allowed`);
  }
  if (/[\u0000-\u001f\u007f]/.test(text)) throw new ControlError(UAPI_EINVAL, "name: contains control characters");
  if (text !== text.trim()) throw new ControlError(UAPI_EINVAL, "name: starts or ends with whitespace");
  return text;
}

/**
 * The line that ends every answer. `errno` is the positive Linux number (ControlError.errno,
 * the UAPI_* constants) or 0; on the wire it is negated, as wireguard-go writes it and `wg`
 * reads it (`errno=-22`).
 */
export function errnoLine(errno: number): string {
  return `errno=${errno === 0 ? 0 : -Math.abs(errno)}\n\n`;
}
