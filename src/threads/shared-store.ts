// The main thread's side of the shared sessions: the SessionStore the WireGuard protocol
// publishes its keypairs to, and the SessionCounters its own keypairs then use (the main thread
// is data-path thread 0: it seals and opens too, with counter blocks of its own residue).
import { randomBytes } from "../crypto/primitives.ts";
import type { Keypair, SessionCounters } from "../protocol/wireguard/keypair.ts";
import type { SessionStore } from "../protocol/wireguard/protocol.ts";
import type { PeerId } from "../protocol/tunnel.ts";
import { COUNTER_BLOCK, STALE_BLOCKS, KF_EXPIRED, KF_INITIATOR, KF_NEXT, SharedSessions } from "./shared-sessions.ts";

/** Thread 0's counters on a shared keypair slot. */
class SharedCounters implements SessionCounters {
  private nextCounter = 0;
  private end = 0;

  constructor(
    private readonly sessions: SharedSessions,
    private readonly index: number,
    private readonly slot: number,
    private readonly generation: number,
    private readonly threads: number,
  ) {}

  next(): number {
    if ((this.sessions.flags(this.slot) & KF_EXPIRED) !== 0) return -1;
    const end = this.end;
    if (this.nextCounter >= end || this.sessions.highestBlock(this.slot) - (end / COUNTER_BLOCK - 1) > STALE_BLOCKS) {
      const block = this.sessions.reserveBlock(this.slot, this.generation);
      if (block < 0) return -1;
      this.nextCounter = block * COUNTER_BLOCK;
      this.end = this.nextCounter + COUNTER_BLOCK;
    }
    return this.nextCounter++;
  }

  canSend(): boolean {
    return (this.sessions.flags(this.slot) & KF_EXPIRED) === 0 && this.sessions.generation(this.slot) === this.generation;
  }

  expire(): void {
    this.sessions.setFlag(this.index, KF_EXPIRED, true);
  }

  accept(counter: number): boolean {
    return this.sessions.acceptCounter(this.slot, counter);
  }
}

export class SharedSessionStore implements SessionStore {
  constructor(
    readonly sessions: SharedSessions,
    private readonly threads: number,
  ) {}

  /**
   * An index whose bits 16-31 are random but for their value modulo the thread count, which is
   * the peer's receiving thread: the sockets' steering program sends the peer's datagrams there.
   */
  allocateIndex(peer: PeerId): number {
    const r = randomBytes(2);
    const home = this.sessions.peerSlot(peer) % this.threads;
    const high = r[0] | (r[1] << 8);
    let steered = high - (high % this.threads) + home;
    if (steered > 0xffff) steered -= this.threads;
    return this.sessions.allocateIndex(steered);
  }

  releaseIndex(index: number): void {
    this.sessions.releaseIndex(index);
  }

  publish(peer: PeerId, localIndex: number, remoteIndex: number, sendKey: Uint8Array, recvKey: Uint8Array, isInitiator: boolean, createdAt: number): SessionCounters {
    const sessions = this.sessions;
    sessions.publish(localIndex, sessions.peerSlot(peer), remoteIndex, sendKey, recvKey, isInitiator ? KF_INITIATOR : 0, createdAt);
    const slot = sessions.slotOfIndex(localIndex);
    return new SharedCounters(sessions, localIndex, slot, sessions.generation(slot), this.threads);
  }

  keypairsChanged(peer: PeerId, current: Keypair | null, next: Keypair | null): void {
    const sessions = this.sessions;
    const peerSlot = sessions.peerSlot(peer);
    if (current !== null) sessions.setFlag(current.localIndex, KF_NEXT, false);
    if (next !== null) sessions.setFlag(next.localIndex, KF_NEXT, true);
    sessions.setCurrent(peerSlot, current === null ? -1 : sessions.slotOfIndex(current.localIndex));
    // A session is up again: the threads may hand over packets anew when it next goes away.
    if (current !== null) sessions.resetHeld(peerSlot);
  }
}
