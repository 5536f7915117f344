// The wontun wire format (plaintext, byte-compatible with the original program, the article
// "Write a Toy VPN in Rust"). Each message is one whole UDP datagram; integers little-endian.
//
//   1 HandshakeInit      105 bytes: type, assigned_idx u32, sender_name [u8; 100] zero-padded
//   2 HandshakeResponse    9 bytes: type, assigned_idx u32, sender_idx u32
//   3 Data              >= 5 bytes: type, sender_idx u32, IP packet (empty = keepalive)

import { readU32, writeU32 } from "../bytes.ts";

export { readU32, writeU32 };

export const TYPE_HANDSHAKE_INIT = 1;
export const TYPE_HANDSHAKE_RESPONSE = 2;
export const TYPE_DATA = 3;

export const HANDSHAKE_INIT_SIZE = 105;
export const HANDSHAKE_RESPONSE_SIZE = 9;
export const DATA_HEADER_SIZE = 5;
export const NAME_FIELD_SIZE = 100;

/** Message type of a datagram if its size is right for that type, else 0 (drop it). */
export function messageType(buf: Uint8Array, offset: number, length: number): number {
  if (length === 0) return 0;
  const type = buf[offset];
  switch (type) {
    case TYPE_HANDSHAKE_INIT:
      return length === HANDSHAKE_INIT_SIZE ? type : 0;
    case TYPE_HANDSHAKE_RESPONSE:
      return length === HANDSHAKE_RESPONSE_SIZE ? type : 0;
    case TYPE_DATA:
      return length >= DATA_HEADER_SIZE ? type : 0;
    default:
      return 0;
  }
}

/** The name as the 100-byte zero-padded field; throws if it does not fit. */
export function encodeName(name: string): Uint8Array {
  const bytes = new TextEncoder().encode(name);
  if (bytes.length === 0 || bytes.length > NAME_FIELD_SIZE) {
    throw new Error(`peer name must be 1-${NAME_FIELD_SIZE} bytes of UTF-8, "${name}" is ${bytes.length}`);
  }
  const field = new Uint8Array(NAME_FIELD_SIZE);
  field.set(bytes);
  return field;
}

const nameDecoder = new TextDecoder("utf-8", { fatal: false });

/** The sender name of a HandshakeInit: bytes up to the first NUL. */
export function decodeInitName(buf: Uint8Array, offset: number): string {
  const start = offset + 5;
  let end = start;
  while (end < start + NAME_FIELD_SIZE && buf[end] !== 0) end++;
  return nameDecoder.decode(buf.subarray(start, end));
}

export function writeHandshakeInit(buf: Uint8Array, offset: number, assignedIdx: number, nameField: Uint8Array): number {
  buf[offset] = TYPE_HANDSHAKE_INIT;
  writeU32(buf, offset + 1, assignedIdx);
  buf.set(nameField, offset + 5);
  return HANDSHAKE_INIT_SIZE;
}

export function writeHandshakeResponse(buf: Uint8Array, offset: number, assignedIdx: number, senderIdx: number): number {
  buf[offset] = TYPE_HANDSHAKE_RESPONSE;
  writeU32(buf, offset + 1, assignedIdx);
  writeU32(buf, offset + 5, senderIdx);
  return HANDSHAKE_RESPONSE_SIZE;
}

/** Writes the 5-byte data header at `offset`; the packet follows it. */
export function writeDataHeader(buf: Uint8Array, offset: number, senderIdx: number): void {
  buf[offset] = TYPE_DATA;
  writeU32(buf, offset + 1, senderIdx);
}
