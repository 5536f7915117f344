// Which socket of an SO_REUSEPORT group takes a datagram: a classic BPF program attached with
// SO_ATTACH_REUSEPORT_CBPF returns the socket's index in the group (the order the sockets were
// bound in). The program sees the UDP payload.
//
// For WireGuard the payload's first byte is the message type and bytes 4..7 of a transport
// message are the receiver's index (ours, little-endian). Handshake messages (and anything too
// short) go to socket 0, the thread that runs the handshakes; transport data goes to socket
// (index >> 16) % N. Our indices carry their peer's receiving thread there (see
// src/threads/shared-store.ts), so all of one peer's datagrams are opened by one thread, in the
// order they arrived, as wireguard-go's per-peer receive routine does.
import { ptr } from "bun:ffi";
import { libc } from "./libc.ts";
import { fail } from "./errno.ts";

const SOL_SOCKET = 1;
const SO_ATTACH_REUSEPORT_CBPF = 51;

// struct sock_filter opcodes.
const LD_B_ABS = 0x30; // A = payload[k]
const JEQ_K = 0x15; // if A == k: skip jt else skip jf
const LSH_K = 0x64; // A <<= k
const OR_X = 0x4c; // A |= X
const MOD_K = 0x94; // A %= k
const TAX = 0x07; // X = A
const RET_A = 0x16;
const RET_K = 0x06;

const TYPE_TRANSPORT = 4;

/** The program's instructions as [code, jt, jf, k]. */
export function receiverIndexProgram(sockets: number): [number, number, number, number][] {
  if (!Number.isInteger(sockets) || sockets < 1 || sockets > 1024) throw new RangeError(`bad socket count ${sockets}`);
  return [
    [LD_B_ABS, 0, 0, 0],
    [JEQ_K, 0, 7, TYPE_TRANSPORT], // not transport data: to the last instruction (socket 0)
    [LD_B_ABS, 0, 0, 7],
    [LSH_K, 0, 0, 8],
    [TAX, 0, 0, 0],
    [LD_B_ABS, 0, 0, 6],
    [OR_X, 0, 0, 0],
    [MOD_K, 0, 0, sockets],
    [RET_A, 0, 0, 0],
    [RET_K, 0, 0, 0],
  ];
}

/**
 * Attaches the receiver-index program to `fd`'s SO_REUSEPORT group of `sockets` sockets (one
 * attach serves the whole group). Throws if the kernel refuses.
 */
export function steerByReceiverIndex(fd: number, sockets: number): void {
  const program = receiverIndexProgram(sockets);
  const filter = new Uint8Array(new ArrayBuffer(program.length * 8));
  const view = new DataView(filter.buffer);
  program.forEach(([code, jt, jf, k], i) => {
    view.setUint16(i * 8, code, true);
    view.setUint8(i * 8 + 2, jt);
    view.setUint8(i * 8 + 3, jf);
    view.setUint32(i * 8 + 4, k, true);
  });
  // struct sock_fprog: unsigned short len; (padding); struct sock_filter *filter.
  const fprog = new Uint8Array(new ArrayBuffer(16));
  const fview = new DataView(fprog.buffer);
  fview.setUint16(0, program.length, true);
  fview.setBigUint64(8, BigInt(ptr(filter)), true);
  if (libc.setsockopt(fd, SOL_SOCKET, SO_ATTACH_REUSEPORT_CBPF, ptr(fprog), 16) < 0) fail("setsockopt(SO_ATTACH_REUSEPORT_CBPF)");
}
