// Which queue of a multi-queue TUN the kernel hands an outgoing packet to. By default the
// kernel's "automq" puts a flow on the queue its packets were last written to, and a peer's
// packets are all written by the one thread that opens them (see reuseport-steering.ts): every
// flow to that peer would end on that thread. A steering program (TUNSETSTEERINGEBPF) instead
// picks queue = skb->hash % queues, so flows spread over the threads by their hash.
//
// The program is two eBPF instructions (BPF_PROG_TYPE_SOCKET_FILTER): r0 = skb->hash; exit.
import { ptr } from "bun:ffi";
import { errno, libc } from "./libc.ts";
import { errnoName } from "./errno.ts";

const SYS_BPF = 321; // x86-64
const BPF_PROG_LOAD = 5;
const BPF_PROG_TYPE_SOCKET_FILTER = 1;
const TUNSETSTEERINGEBPF = 0x800454e0;
/** offsetof(struct __sk_buff, hash). */
const SKB_HASH = 68;

/** The program: [r0 = *(u32 *)(r1 + 68); exit], as struct bpf_insn (8 bytes each). */
function program(): Uint8Array {
  const insns = new Uint8Array(new ArrayBuffer(16));
  const view = new DataView(insns.buffer);
  view.setUint8(0, 0x61); // BPF_LDX | BPF_MEM | BPF_W
  view.setUint8(1, (1 << 4) | 0); // src r1, dst r0
  view.setInt16(2, SKB_HASH, true);
  view.setUint8(8, 0x95); // BPF_JMP | BPF_EXIT
  return insns;
}

/**
 * Loads the program and sets it on `tunFd`'s interface (one call serves every queue). Returns
 * null, or why it could not (no CAP_BPF/CAP_SYS_ADMIN, an old kernel, not x86-64): the threads
 * still work, with the kernel's default spreading.
 */
export function steerTunByHash(tunFd: number): string | null {
  if (process.arch !== "x64") return "TUN steering is wired for x86-64 only";
  const insns = program();
  const license = Buffer.from("GPL\0");
  // union bpf_attr for BPF_PROG_LOAD: prog_type, insn_cnt, insns, license, log_level, log_size, log_buf, ...
  const attr = new Uint8Array(new ArrayBuffer(128));
  const view = new DataView(attr.buffer);
  view.setUint32(0, BPF_PROG_TYPE_SOCKET_FILTER, true);
  view.setUint32(4, 2, true);
  view.setBigUint64(8, BigInt(ptr(insns)), true);
  view.setBigUint64(16, BigInt(ptr(license)), true);
  const progFd = libc.syscall(SYS_BPF, BPF_PROG_LOAD, ptr(attr), attr.length);
  if (progFd < 0) return `loading the steering program: ${errnoName(errno())}`;
  const box = new Int32Array([progFd]);
  const rc = libc.ioctl(tunFd, TUNSETSTEERINGEBPF, ptr(box));
  const code = errno();
  // The interface keeps its own reference to the program.
  libc.close(progFd);
  return rc < 0 ? `TUNSETSTEERINGEBPF: ${errnoName(code)}` : null;
}
