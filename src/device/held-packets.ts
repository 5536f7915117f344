// Packets that arrived from the TUN for a peer whose session is not up yet. Bounded, allocated
// on first use (most peers never need it), and kept only until the handshake finishes.

export const HELD_PACKETS_MAX = 32;

export class HeldPackets {
  count = 0;
  dropped = 0;
  readonly bytes: Uint8Array;
  readonly lengths = new Int32Array(HELD_PACKETS_MAX);

  constructor(readonly slotSize: number) {
    this.bytes = new Uint8Array(new ArrayBuffer(HELD_PACKETS_MAX * slotSize));
  }

  /** Copies buf[offset, offset+length) into the next slot at `headroom`; false if full. */
  hold(buf: Uint8Array, offset: number, length: number, headroom: number): boolean {
    if (this.count === HELD_PACKETS_MAX) {
      this.dropped++;
      return false;
    }
    const at = this.count * this.slotSize + headroom;
    this.bytes.set(buf.subarray(offset, offset + length), at);
    this.lengths[this.count++] = length;
    return true;
  }

  slotOffset(i: number, headroom: number): number {
    return i * this.slotSize + headroom;
  }
}
