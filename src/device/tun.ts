// The TUN side of the device, behind one interface (the idea of wireguard-go's tun.Device): the
// device reads plain IP packets into its outgoing slots and writes plain IP packets. Whether the
// kernel hands over TSO super-packets (cut here into packets) or takes coalesced TCP segments
// (glued here) stays inside the implementation. Two implementations: KernelTun (tun-kernel.ts)
// and MemoryTun (packets injected and collected by tests, tun-memory.ts).
import type { DeviceCounters } from "./counters.ts";

/** read(): nothing more to read now. */
export const TUN_EMPTY = -1;
/** read(): the next (super-)packet needs more free slots than given; it is kept for the next call. */
export const TUN_NEEDS_ROOM = -2;

/**
 * Bytes a caller of write() leaves free before each packet (room for a virtio-net header, so
 * the packet needs no copy).
 */
export const TUN_WRITE_HEADROOM = 10;

export interface Tun {
  /** The interface's name (as the kernel gave it, once open). */
  readonly name: string;
  /** For epoll, once open; -1 when there is none (in memory: the device visits it on every step). */
  readonly fd: number;
  /** Packets written so far (a write makes the kernel answer at once: the device reads again). */
  readonly packetsWritten: number;
  /** The interface was deleted under us (`ip link del`, `wg-quick down`): the device stops. */
  readonly gone: boolean;
  /** Where drop counters go (the device sets its own). */
  counters: DeviceCounters;

  /**
   * Reads one packet (or one super-packet, cut into packets) into slots first, first+1, ... of
   * `bytes`: packet k goes to bytes[starts[k]..], at most `packetRoom` bytes, its length into
   * lengths[k]. `room` slots are free. Returns how many slots it filled (0 if what it read was
   * dropped and counted), TUN_EMPTY, or TUN_NEEDS_ROOM.
   */
  read(bytes: Uint8Array, starts: Int32Array, lengths: Int32Array, first: number, room: number, packetRoom: number): number;
  /**
   * Writes the IP packet buf[offset, offset+length); TUN_WRITE_HEADROOM bytes before it are free
   * to use. With `coalesce`, it may instead be glued to others of its TCP flow and written at the
   * next flush(); buf must then stay untouched until that flush.
   */
  write(buf: Uint8Array, offset: number, length: number, coalesce: boolean): void;
  /** Writes what write() kept back for coalescing. */
  flush(): void;
  /** Creates or attaches the interface; throws if it cannot. */
  open(): void;
  close(): void;
}
