// A session's transport keys, with the state that goes with them: counters and replay window.
import type { AeadBackend, AeadKey } from "../../crypto/aead.ts";
import { wipe } from "../../crypto/primitives.ts";
import { ReplayWindow } from "./replay.ts";
import type { WgPeer } from "./peer.ts";

export class Keypair {
  sendCounter = 0;
  readonly replay = new ReplayWindow();
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

  destroy(): void {
    this.aead.destroyKey(this.send);
    this.aead.destroyKey(this.recv);
  }
}
