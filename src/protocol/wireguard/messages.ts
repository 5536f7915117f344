// WireGuard message layouts. Every message starts with a type byte and three zero bytes;
// integers are little-endian.
//
//   1 initiation   148: sender u32 @4, ephemeral[32] @8, static[32+16] @40, timestamp[12+16] @88,
//                       mac1[16] @116, mac2[16] @132
//   2 response      92: sender u32 @4, receiver u32 @8, ephemeral[32] @12, empty[0+16] @44,
//                       mac1[16] @60, mac2[16] @76
//   3 cookie reply  64: receiver u32 @4, nonce[24] @8, cookie[16+16] @32
//   4 transport   >=32: receiver u32 @4, counter u64 @8, packet (padded to 16) + tag[16] @16

import { readU32, writeU32 } from "../bytes.ts";

export { readU32, writeU32 };

export const TYPE_INITIATION = 1;
export const TYPE_RESPONSE = 2;
export const TYPE_COOKIE_REPLY = 3;
export const TYPE_TRANSPORT = 4;

export const INITIATION_SIZE = 148;
export const RESPONSE_SIZE = 92;
export const COOKIE_REPLY_SIZE = 64;
export const TRANSPORT_HEADER_SIZE = 16;
export const TRANSPORT_MIN_SIZE = 32;

export const INITIATION_SENDER = 4;
export const INITIATION_NOISE = 8; // e || enc(s) || enc(timestamp): 108 bytes
export const INITIATION_NOISE_SIZE = 108;
export const INITIATION_MAC1 = 116;
export const INITIATION_MAC2 = 132;

export const RESPONSE_SENDER = 4;
export const RESPONSE_RECEIVER = 8;
export const RESPONSE_NOISE = 12; // e || enc(empty): 48 bytes
export const RESPONSE_NOISE_SIZE = 48;
export const RESPONSE_MAC1 = 60;
export const RESPONSE_MAC2 = 76;

export const COOKIE_RECEIVER = 4;
export const COOKIE_NONCE = 8;
export const COOKIE_ENCRYPTED = 32;

export const TRANSPORT_RECEIVER = 4;
export const TRANSPORT_COUNTER = 8;
export const PADDING_MULTIPLE = 16;

/** The type of a datagram if its size fits that type, else 0. Reserved bytes must be zero. */
export function messageType(buf: Uint8Array, offset: number, length: number): number {
  if (length < 4 || buf[offset + 1] !== 0 || buf[offset + 2] !== 0 || buf[offset + 3] !== 0) return 0;
  const type = buf[offset];
  switch (type) {
    case TYPE_INITIATION:
      return length === INITIATION_SIZE ? type : 0;
    case TYPE_RESPONSE:
      return length === RESPONSE_SIZE ? type : 0;
    case TYPE_COOKIE_REPLY:
      return length === COOKIE_REPLY_SIZE ? type : 0;
    case TYPE_TRANSPORT:
      return length >= TRANSPORT_MIN_SIZE ? type : 0;
    default:
      return 0;
  }
}

/** Writes the type byte and three zero bytes. */
export function writeType(buf: Uint8Array, at: number, type: number): void {
  buf[at] = type;
  buf[at + 1] = 0;
  buf[at + 2] = 0;
  buf[at + 3] = 0;
}

/** A 64-bit counter as a number; -1 if it is beyond 2^53 (never legitimately reached). */
export function readCounter(buf: Uint8Array, at: number): number {
  const hi = readU32(buf, at + 4);
  if (hi >= 0x200000) return -1;
  return hi * 0x100000000 + readU32(buf, at);
}

export function writeCounter(buf: Uint8Array, at: number, counter: number): void {
  writeU32(buf, at, counter >>> 0);
  writeU32(buf, at + 4, Math.floor(counter / 0x100000000));
}
