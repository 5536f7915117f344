// A Tun without a kernel: tests inject IP packets as if the host sent them and collect what the
// device writes. No offloads: each injected packet is one packet.
import { DeviceCounters } from "./counters.ts";
import { TUN_EMPTY, type Tun } from "./tun.ts";

export class MemoryTun implements Tun {
  readonly fd = -1;
  readonly gone = false;
  packetsWritten = 0;
  counters = new DeviceCounters();
  /** Packets the device wrote, in order (copies). */
  readonly written: Uint8Array[] = [];
  private readonly outbox: Uint8Array[] = [];

  constructor(readonly name = "mem0") {}

  /** Queues an IP packet for the device to read, as the host's stack would. */
  inject(packet: Uint8Array): void {
    this.outbox.push(packet);
  }

  /** Packets injected and not read yet. */
  get unread(): number {
    return this.outbox.length;
  }

  /** Takes what the device wrote so far. */
  take(): Uint8Array[] {
    return this.written.splice(0);
  }

  read(bytes: Uint8Array, starts: Int32Array, lengths: Int32Array, first: number, _room: number, packetRoom: number): number {
    const packet = this.outbox.shift();
    if (packet === undefined) return TUN_EMPTY;
    const length = Math.min(packet.length, packetRoom);
    bytes.set(packet.subarray(0, length), starts[first]);
    lengths[first] = length;
    return 1;
  }

  write(buf: Uint8Array, offset: number, length: number, _coalesce: boolean): void {
    this.packetsWritten++;
    this.written.push(buf.slice(offset, offset + length));
  }

  flush(): void {}

  open(): void {}

  close(): void {}
}
