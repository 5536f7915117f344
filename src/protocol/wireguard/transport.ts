// Opening a transport message, the checks in WireGuard's order: the keypair not too old, a
// well-formed counter, the tag, then the replay window (only authenticated counters may move it).
// Shared by the WireGuard protocol and the data-path threads (src/threads), whose keypairs live
// in different places.
import { REJECT_AFTER_TIME } from "./constants.ts";
import { TRANSPORT_COUNTER, TRANSPORT_HEADER_SIZE, readCounter } from "./messages.ts";

/** The keypair a transport message names, as opening it needs it. */
export interface OpeningKeypair {
  readonly createdAt: number;
  /** Opens buf[offset, offset+length) in place (ciphertext and tag); false if the tag is wrong. */
  open(counter: number, buf: Uint8Array, offset: number, length: number): boolean;
  /** Replay check of an authenticated counter: true (and recorded) if it is new. */
  acceptCounter(counter: number): boolean;
}

/** Where the drops are counted (the protocols' counters have these fields). */
export interface TransportDrops {
  expiredKeypair: number;
  malformed: number;
  decryptFailed: number;
  replayedData: number;
}

/**
 * Opens the transport message at buf[offset, offset+length) with `keypair`: true if it is
 * authentic and new (its plaintext, tag stripped, starts at offset + TRANSPORT_HEADER_SIZE);
 * otherwise counts why in `drops` and returns false.
 */
export function openTransport(keypair: OpeningKeypair, buf: Uint8Array, offset: number, length: number, now: number, drops: TransportDrops): boolean {
  if (now - keypair.createdAt >= REJECT_AFTER_TIME) {
    drops.expiredKeypair++;
    return false;
  }
  const counter = readCounter(buf, offset + TRANSPORT_COUNTER);
  if (counter < 0) {
    drops.malformed++;
    return false;
  }
  if (!keypair.open(counter, buf, offset + TRANSPORT_HEADER_SIZE, length - TRANSPORT_HEADER_SIZE)) {
    drops.decryptFailed++;
    return false;
  }
  if (!keypair.acceptCounter(counter)) {
    drops.replayedData++;
    return false;
  }
  return true;
}
