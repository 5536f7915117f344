// The TUN device: /dev/net/tun + TUNSETIFF gives a file descriptor that reads and writes whole
// IP packets (IFF_NO_PI: no 4-byte packet-info header in front). With IFF_VNET_HDR each packet
// is preceded by a 10-byte struct virtio_net_hdr, which lets the kernel hand us TCP super-packets
// of up to 64 KiB (TSO, enabled with TUNSETOFFLOAD) and take coalesced ones back (see
// src/net/offload).
import { readFileSync } from "node:fs";
import { ptr, type Pointer } from "bun:ffi";
import { cstr, errno, libc } from "./libc.ts";
import { EBUSY, EINVAL, ENOENT, EPERM, EACCES, NEEDS_NET_ADMIN, SysError, fail } from "./errno.ts";
import { setNonBlocking } from "./fd.ts";

const O_RDWR = 2;
const O_CLOEXEC = 0o2000000;
const TUNSETIFF = 0x400454ca;
const IFF_TUN = 0x0001;
const IFF_TAP = 0x0002;
const IFF_MULTI_QUEUE = 0x0100;
const IFF_PERSIST = 0x0800;
const IFF_NO_PI = 0x1000;
const IFF_VNET_HDR = 0x4000;
/** TUNSETIFF fails with EBUSY if the interface exists, before it changes anything about it. */
const IFF_TUN_EXCL = 0x8000;
const TUNSETOFFLOAD = 0x400454d0;
const TUN_F_CSUM = 0x01;
const TUN_F_TSO4 = 0x02;
const TUN_F_TSO6 = 0x04;
// UDP segmentation offload (Linux 6.2+): the kernel takes and hands over GSO_UDP_L4 super-packets.
const TUN_F_USO4 = 0x20;
const TUN_F_USO6 = 0x40;
export const IFNAMSIZ = 16;

export interface TunDevice {
  readonly fd: number;
  /** The name the kernel gave the interface (may differ if a pattern like "wt%d" was asked). */
  readonly name: string;
  /** Every read and write starts with a struct virtio_net_hdr. */
  readonly vnetHdr: boolean;
  /** The kernel may hand us TCP super-packets (TSO) with partial checksums. */
  readonly tso: boolean;
  /** The kernel takes UDP super-packets (GSO_UDP_L4) and may hand them to us (USO). */
  readonly uso: boolean;
}

export interface TunOptions {
  /** IFF_VNET_HDR: needed for either offload. */
  vnetHdr?: boolean;
  /** TUNSETOFFLOAD with checksum offload and TSO for IPv4 and IPv6 (requires vnetHdr). */
  tso?: boolean;
  /**
   * TUNSETOFFLOAD with checksum offload and USO for IPv4 and IPv6 (requires vnetHdr), if the
   * kernel has it (6.2+; TunDevice.uso says whether it took).
   */
  uso?: boolean;
  /**
   * An existing persistent TUN interface (`ip tuntap add`): "refuse" it (default: `wontun up`
   * creates the interface it configures, and leaves one it did not create exactly as it was), or
   * "attach" to it as wireguard-go does (the `wontun IFACE` invocation, which configures nothing
   * on the interface itself).
   */
  existing?: "refuse" | "attach";
  /**
   * IFF_MULTI_QUEUE: the interface has one queue per fd, and the kernel spreads outgoing flows
   * over them (each flow sticks to the queue its packets were last written to). The first
   * queue creates the interface; addTunQueue() attaches the others.
   */
  multiQueue?: boolean;
}

/**
 * The TUN/TAP flags of existing interface `name` (IFF_TUN/IFF_TAP, IFF_PERSIST, IFF_MULTI_QUEUE,
 * ...) as sysfs shows them; null if it is not a TUN/TAP device or sysfs cannot tell (sysfs
 * mounted for another network namespace: its ifindex must be this namespace's).
 */
function existingTunFlags(name: string): number | null {
  try {
    const base = `/sys/class/net/${name}`;
    const index = libc.if_nametoindex(cstr(name));
    if (index === 0 || Number(readFileSync(`${base}/ifindex`, "utf8").trim()) !== index) return null;
    const flags = Number.parseInt(readFileSync(`${base}/tun_flags`, "utf8").trim(), 16);
    return Number.isFinite(flags) ? flags : null;
  } catch {
    return null;
  }
}

/** Why TUNSETIFF refused existing interface `name` (EBUSY or EINVAL), in one clause. */
function existingInterfaceReason(name: string, code: number, attach: boolean): string {
  const flags = existingTunFlags(name);
  const exists = libc.if_nametoindex(cstr(name)) !== 0;
  if (flags === null) {
    if (!exists) return code === EBUSY ? `interface ${name} is in use` : `interface name ${name} is not accepted by the kernel`;
    return `interface ${name} exists and is not a TUN device`;
  }
  if (flags & IFF_TAP) return `interface ${name} exists and is a TAP device, not a TUN device`;
  const persistent = (flags & IFF_PERSIST) !== 0;
  const deleteIt = `ip tuntap del dev ${name} mode tun${flags & IFF_MULTI_QUEUE ? " multi_queue" : ""}`;
  if (flags & IFF_MULTI_QUEUE) {
    return `interface ${name} is a ${persistent ? "persistent " : ""}multi-queue TUN device; wontun ${attach ? "attaches only to" : "creates"} a single-queue one (${persistent ? `delete it with '${deleteIt}' or ` : ""}use another name)`;
  }
  if (persistent && !attach) {
    return `interface ${name} is a persistent TUN device (ip tuntap add); wontun up creates its own interface and leaves this one untouched: delete it with '${deleteIt}' or use another name`;
  }
  return `interface ${name} exists and is in use (another wontun or VPN running?)`;
}

/** Interface names: 1-15 bytes, no '/', no whitespace, not "." or "..", not "all" or "default". */
export function validateInterfaceName(name: string): string | null {
  if (name.length === 0) return "interface name is empty";
  if (Buffer.byteLength(name) >= IFNAMSIZ) return `interface name "${name}" is longer than 15 bytes`;
  if (/[\s/:]/.test(name) || name === "." || name === "..") {
    return `interface name "${name}" may not contain whitespace, '/' or ':'`;
  }
  // The kernel refuses these (EINVAL): they would clash with /proc/sys/net/*/conf/{all,default}.
  if (name === "all" || name === "default") return `interface name "${name}" is reserved by the kernel`;
  return null;
}

/**
 * Creates (or attaches to) TUN interface `name`, non-blocking. The interface lives as long as
 * the fd: closing it removes the interface with its addresses and routes.
 */
export function openTun(name: string, options: TunOptions = {}): TunDevice {
  const vnetHdr = wantsVnetHdr(options);
  const bad = validateInterfaceName(name);
  if (bad) throw new Error(bad);
  const fd = libc.open(cstr("/dev/net/tun"), O_RDWR | O_CLOEXEC);
  if (fd < 0) {
    fail("open /dev/net/tun", {
      [ENOENT]: "the tun module is missing (modprobe tun), or in a container pass --device /dev/net/tun",
      [EPERM]: NEEDS_NET_ADMIN,
      // Opening needs no capability: EACCES is the device node's file mode (e.g. 0600 root).
      [EACCES]: "the permissions of /dev/net/tun deny this user (ls -l /dev/net/tun; it is normally crw-rw-rw-)",
    });
  }
  // struct ifreq: char ifr_name[16]; short ifr_flags; padding to 40 bytes.
  const ifr = new Uint8Array(new ArrayBuffer(40));
  Buffer.from(ifr.buffer).write(name, 0, "utf8");
  const attach = options.existing === "attach";
  // Without "attach", IFF_TUN_EXCL makes the kernel refuse an existing interface before it
  // touches it (attaching rewrites a persistent TUN's flags, and wontun up would configure it).
  const flags = tunFlags(options) | (attach ? 0 : IFF_TUN_EXCL);
  new DataView(ifr.buffer).setUint16(IFNAMSIZ, flags, true);
  if (libc.ioctl(fd, TUNSETIFF, ptr(ifr)) < 0) {
    const code = errno();
    try {
      const reason = code === EBUSY || code === EINVAL ? existingInterfaceReason(name, code, attach) : undefined;
      throw new SysError(`TUNSETIFF ${name}`, code, reason ?? { [EPERM]: NEEDS_NET_ADMIN, [EACCES]: NEEDS_NET_ADMIN }[code]);
    } finally {
      libc.close(fd);
    }
  }
  const uso = setOffloadAndNonBlocking(fd, name, options);
  const end = ifr.indexOf(0);
  const actual = new TextDecoder().decode(ifr.subarray(0, end < 0 || end > IFNAMSIZ ? IFNAMSIZ : end));
  return { fd, name: actual, vnetHdr, tso: options.tso === true, uso };
}

/** Either offload needs IFF_VNET_HDR. */
function wantsVnetHdr(options: TunOptions): boolean {
  return options.vnetHdr === true || options.tso === true || options.uso === true;
}

function tunFlags(options: TunOptions): number {
  const vnetHdr = wantsVnetHdr(options);
  return IFF_TUN | IFF_NO_PI | (vnetHdr ? IFF_VNET_HDR : 0) | (options.multiQueue ? IFF_MULTI_QUEUE : 0);
}

/** Sets the offloads asked for and O_NONBLOCK; returns whether the kernel took USO. */
function setOffloadAndNonBlocking(fd: number, name: string, options: TunOptions): boolean {
  // TUNSETOFFLOAD takes the flags by value, in the pointer-sized argument.
  const flags = TUN_F_CSUM | (options.tso ? TUN_F_TSO4 | TUN_F_TSO6 : 0);
  // A kernel before 6.2 answers EINVAL to the USO flags: then without them, as asked otherwise.
  const uso = options.uso === true && libc.ioctl(fd, TUNSETOFFLOAD, (flags | TUN_F_USO4 | TUN_F_USO6) as unknown as Pointer) >= 0;
  if (!uso && options.tso && libc.ioctl(fd, TUNSETOFFLOAD, flags as unknown as Pointer) < 0) {
    try {
      fail(`TUNSETOFFLOAD ${name}`);
    } finally {
      libc.close(fd);
    }
  }
  setNonBlocking(fd);
  return uso;
}

/**
 * One more queue of multi-queue interface `device` (opened with multiQueue), with the same
 * flags; closing every queue's fd removes the interface.
 */
export function addTunQueue(device: TunDevice, options: TunOptions): number {
  const fd = libc.open(cstr("/dev/net/tun"), O_RDWR | O_CLOEXEC);
  if (fd < 0) fail("open /dev/net/tun");
  const ifr = new Uint8Array(new ArrayBuffer(40));
  Buffer.from(ifr.buffer).write(device.name, 0, "utf8");
  new DataView(ifr.buffer).setUint16(IFNAMSIZ, tunFlags({ ...options, multiQueue: true }), true);
  if (libc.ioctl(fd, TUNSETIFF, ptr(ifr)) < 0) {
    try {
      fail(`TUNSETIFF ${device.name} (another queue)`);
    } finally {
      libc.close(fd);
    }
  }
  setOffloadAndNonBlocking(fd, device.name, options);
  return fd;
}
