// Packets that arrived from the TUN for a peer whose session is not up yet. Bounded, and each
// packet is copied into its own buffer: holding happens only while a handshake is in flight, so
// memory follows what is actually held instead of reserving room for every peer.

export const HELD_PACKETS_MAX = 32;

export class HeldPackets {
  dropped = 0;
  /** Each held packet sits at `headroom` in its own buffer, with `tailroom` after it. */
  readonly buffers: Uint8Array[] = [];
  readonly lengths: number[] = [];

  constructor(
    readonly headroom: number,
    readonly tailroom: number,
  ) {}

  get count(): number {
    return this.buffers.length;
  }

  /** Copies buf[offset, offset+length); false (and counted) if the peer already holds the maximum. */
  hold(buf: Uint8Array, offset: number, length: number): boolean {
    if (this.buffers.length === HELD_PACKETS_MAX) {
      this.dropped++;
      return false;
    }
    // Its own ArrayBuffer: small typed arrays without one may move, and ptr() of it goes to the kernel.
    const copy = new Uint8Array(new ArrayBuffer(this.headroom + length + this.tailroom));
    copy.set(buf.subarray(offset, offset + length), this.headroom);
    this.buffers.push(copy);
    this.lengths.push(length);
    return true;
  }
}
