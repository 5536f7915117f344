// A session's transport keys, with the state that goes with them: send counters and replay window.
import type { AeadBackend, AeadKey } from "../../crypto/aead.ts";
import { wipe } from "../../crypto/primitives.ts";
import { MAX_COUNTER, ReplayWindow } from "./replay.ts";
import type { WgPeer } from "./peer.ts";
import type { OpeningKeypair } from "./transport.ts";

/**
 * Where a keypair's send counters and replay window live: in the keypair itself (one thread),
 * or shared with the other data-path threads (src/threads/shared-counters.ts).
 */
export interface SessionCounters {
  /** The next counter to send with, or -1 once the keypair may send no more. */
  next(): number;
  canSend(): boolean;
  /** From now on the keypair may open but not send (our static key changed). */
  expire(): void;
  /** Replay check of an authenticated counter: true (and recorded) if it is new. */
  accept(counter: number): boolean;
}

/** The single-threaded SessionCounters: a plain counter and a ReplayWindow. */
export class LocalCounters implements SessionCounters {
  private sendCounter = 0;
  private readonly replay = new ReplayWindow();

  next(): number {
    return this.sendCounter < MAX_COUNTER ? this.sendCounter++ : -1;
  }

  canSend(): boolean {
    return this.sendCounter < MAX_COUNTER;
  }

  expire(): void {
    this.sendCounter = MAX_COUNTER;
  }

  accept(counter: number): boolean {
    return this.replay.accept(counter);
  }
}

export class Keypair implements OpeningKeypair {
  private readonly send: AeadKey;
  private readonly recv: AeadKey;

  constructor(
    readonly peer: WgPeer,
    readonly localIndex: number,
    readonly remoteIndex: number,
    sendKey: Uint8Array,
    recvKey: Uint8Array,
    readonly isInitiator: boolean,
    readonly createdAt: number,
    private readonly aead: AeadBackend,
    readonly counters: SessionCounters = new LocalCounters(),
  ) {
    this.send = aead.createKey(sendKey, "seal");
    this.recv = aead.createKey(recvKey, "open");
    wipe(sendKey);
    wipe(recvKey);
  }

  seal(counter: number, buf: Uint8Array, offset: number, length: number): void {
    this.aead.seal(this.send, counter, buf, offset, length);
  }

  open(counter: number, buf: Uint8Array, offset: number, length: number): boolean {
    return this.aead.open(this.recv, counter, buf, offset, length);
  }

  acceptCounter(counter: number): boolean {
    return this.counters.accept(counter);
  }

  destroy(): void {
    this.aead.destroyKey(this.send);
    this.aead.destroyKey(this.recv);
  }
}
