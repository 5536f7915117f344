// Interface setup over rtnetlink: MTU, link up/down, addresses and routes, done in-process
// through an AF_NETLINK/NETLINK_ROUTE socket (no `ip` binary needed). Startup-only, so every
// call is synchronous: send one request with NLM_F_ACK, block until the kernel's ACK arrives.
import { ptr } from "bun:ffi";
import { cstr, errno, libc } from "./libc.ts";
import {
  EACCES, EADDRNOTAVAIL, EEXIST, EAGAIN, EHOSTUNREACH, EINTR, ENETUNREACH, ENODEV, ENOENT, EPERM, NEEDS_NET_ADMIN, SysError, errnoName,
} from "./errno.ts";
import { type Cidr, cidrContains, formatCidr, formatIp, maskAddress } from "../net/ip.ts";
import { IFNAMSIZ, validateInterfaceName } from "./tun.ts";

// --- socket constants -----------------------------------------------------------------------
const AF_NETLINK = 16;
const AF_INET = 2;
const AF_INET6 = 10;
const SOCK_RAW = 3;
const SOCK_CLOEXEC = 0o2000000;
const NETLINK_ROUTE = 0;
const SOL_SOCKET = 1;
const SO_RCVTIMEO = 20; // struct timeval { i64 tv_sec; i64 tv_usec } on 64-bit Linux
const SOL_NETLINK = 270;
const NETLINK_CAP_ACK = 10; // error ACKs echo only the request's header, not its payload
const NETLINK_EXT_ACK = 11; // error ACKs carry the kernel's explanation (NLMSGERR_ATTR_MSG)
const ESRCH = 3; // what RTM_DELROUTE answers for a route that does not exist
const ERANGE = 34;

// --- message types and flags (linux/netlink.h, linux/rtnetlink.h) ---------------------------
const NLMSG_ERROR = 2;
const RTM_NEWLINK = 16;
const RTM_DELLINK = 17;
const RTM_NEWADDR = 20;
const RTM_DELADDR = 21;
const RTM_NEWROUTE = 24;
const RTM_DELROUTE = 25;
const RTM_GETROUTE = 26;
const RTM_GETLINK = 18;
const RTM_NEWRULE = 32;
const RTM_DELRULE = 33;
const RTM_GETRULE = 34;
const NLMSG_DONE = 3;
const NLM_F_MULTI = 0x2; // part of a multi-message answer (a dump)
const NLM_F_DUMP = 0x300; // NLM_F_ROOT | NLM_F_MATCH: every object of the kind

const NLM_F_REQUEST = 0x1;
const NLM_F_ACK = 0x4;
const NLM_F_EXCL = 0x200;
const NLM_F_CREATE = 0x400;
const NLM_F_CAPPED = 0x100; // in an error ACK: the echoed request is only its header
const NLM_F_ACK_TLVS = 0x200; // in an error ACK: extended-ACK attributes follow the echo
const NLMSGERR_ATTR_MSG = 1; // NUL-terminated explanation string

// --- struct nlmsghdr (16 bytes): the header of every netlink message ------------------------
const NLMSG_HDRLEN = 16;
const NLH_LEN = 0; // u32 total length, header included
const NLH_TYPE = 4; // u16 message type (RTM_*, NLMSG_ERROR)
const NLH_FLAGS = 6; // u16 NLM_F_*
const NLH_SEQ = 8; // u32 sequence number, echoed in the reply
const NLH_PID = 12; // u32 sender port id (0 = kernel)

// --- struct ifinfomsg (16 bytes): RTM_*LINK payload ----------------------------------------
const IFINFOMSG_LEN = 16;
const IFI_FAMILY = 0; // u8 AF_UNSPEC
const IFI_TYPE = 2; // u16 ARPHRD_* (0 in requests); byte 1 is padding
const IFI_INDEX = 4; // i32 interface index
const IFI_FLAGS = 8; // u32 IFF_* values to set
const IFI_CHANGE = 12; // u32 mask of IFF_* bits to change
const IFF_UP = 0x1;
const IFLA_MTU = 4; // u32 attribute

// --- struct ifaddrmsg (8 bytes): RTM_*ADDR payload -----------------------------------------
const IFADDRMSG_LEN = 8;
const IFA_FAMILY = 0; // u8 AF_INET / AF_INET6
const IFA_PREFIXLEN = 1; // u8 prefix length
const IFA_FLAGS_OFF = 2; // u8 IFA_F_* (low 8 bits)
const IFA_SCOPE = 3; // u8 RT_SCOPE_*
const IFA_INDEX = 4; // u32 interface index
const IFA_ADDRESS = 1; // attribute: prefix address (the peer on point-to-point links)
const IFA_LOCAL = 2; // attribute: the local address
const IFA_F_NODAD = 0x02; // IPv6: skip duplicate address detection, usable at once

// --- struct rtmsg (12 bytes): RTM_*ROUTE payload -------------------------------------------
const RTMSG_LEN = 12;
const RTM_FAMILY = 0; // u8 AF_INET / AF_INET6
const RTM_DST_LEN = 1; // u8 destination prefix length
const RTM_SRC_LEN = 2; // u8 source prefix length (0)
const RTM_TOS = 3; // u8 TOS (0)
const RTM_TABLE = 4; // u8 routing table id (RT_TABLE_MAIN)
const RTM_PROTOCOL = 5; // u8 RTPROT_* who installed it
const RTM_SCOPE = 6; // u8 RT_SCOPE_*
const RTM_TYPE = 7; // u8 RTN_*
const RTM_FLAGS = 8; // u32 RTM_F_* (0)
const RT_TABLE_MAIN = 254;
const RTPROT_BOOT = 3; // what `ip route add` uses
const RT_SCOPE_UNIVERSE = 0;
const RT_SCOPE_LINK = 253;
const RT_SCOPE_NOWHERE = 255; // in a delete: match any scope
const RTN_UNICAST = 1;
const RTA_DST = 1; // attribute: destination address
const RTA_OIF = 4; // attribute: u32 output interface index
const RTA_PRIORITY = 6; // attribute: u32 route metric
const RTA_TABLE = 15; // attribute: u32 table id (any table; rtm_table holds only 8 bits)
const RTA_METRICS = 8; // attribute: nested RTAX_* values
const RTAX_MTU = 2; // in RTA_METRICS: u32 path MTU (a route's `mtu`, or a learned PMTU)
const RT_TABLE_UNSPEC = 0;

// --- struct fib_rule_hdr (12 bytes): RTM_*RULE payload (linux/fib_rules.h) -----------------
const FRH_LEN = 12;
const FRH_FAMILY = 0; // u8
const FRH_TABLE = 4; // u8 table id when < 256
const FRH_ACTION = 7; // u8 FR_ACT_*
const FRH_FLAGS = 8; // u32 FIB_RULE_*
const FR_ACT_TO_TBL = 1;
const FIB_RULE_INVERT = 0x2;
const FRA_PRIORITY = 6;
const FRA_FWMARK = 10;
const FRA_SUPPRESS_PREFIXLEN = 14;
const FRA_TABLE = 15;
const FRA_FWMASK = 16;

// --- struct rtattr (4-byte header): attribute after the fixed payload ----------------------
const RTA_HDRLEN = 4;
const RTA_LEN = 0; // u16 length, header included, not padding
const RTA_TYPE = 2; // u16 attribute type
const align4 = (n: number) => (n + 3) & ~3;

// struct sockaddr_nl (12 bytes): u16 nl_family, u16 pad, u32 nl_pid, u32 nl_groups.
const SOCKADDR_NL_LEN = 12;

const SEND_SIZE = 512;
const RECV_SIZE = 32768;
const REPLY_TIMEOUT_S = 5;

/** Netlink failures: names the operation, e.g. "add route 10.1.0.0/16 dev wt0: ...". */
export class NetlinkError extends SysError {
  constructor(
    readonly operation: string,
    code: number,
    readonly kernelMessage?: string,
    hint?: string,
  ) {
    super(operation, code, hint);
    this.name = "NetlinkError";
    const detail = kernelMessage ? ` [kernel: ${kernelMessage}]` : "";
    this.message = `${operation}: ${describe(code)} (${errnoName(code)})${detail}${hint ? `: ${hint}` : ""}`;
  }
}

function describe(code: number): string {
  switch (code) {
    case EEXIST: return "already exists";
    case ESRCH: return "no such route";
    case ENODEV: return "no such device";
    case EPERM: case EACCES: return "operation not permitted";
    case EADDRNOTAVAIL: return "address not available";
    case ERANGE: return "value out of range";
    default: {
      // Reuse errno.ts's wording for everything else.
      const text = new SysError("", code).message; // ": <words> (NAME)"
      const m = /^: (.*) \([^)]*\)$/.exec(text);
      return m ? m[1] : "failed";
    }
  }
}

const PERMISSION_HINTS: Partial<Record<number, string>> = { [EPERM]: NEEDS_NET_ADMIN, [EACCES]: NEEDS_NET_ADMIN };

/** The index of interface `name`; throws a NetlinkError (ENODEV) naming it if there is none. */
export function interfaceIndex(name: string): number {
  const bad = validateInterfaceName(name);
  if (bad) throw new Error(bad);
  const index = libc.if_nametoindex(cstr(name));
  if (index === 0) {
    const code = errno() || ENODEV;
    throw new NetlinkError(`look up interface "${name}"`, code, undefined,
      code === ENODEV ? "no network interface has that name in this network namespace" : undefined);
  }
  return index;
}

/** The name of interface `index`, or `#index` if it has none (only used in messages). */
export function interfaceName(index: number): string {
  const buf = new Uint8Array(new ArrayBuffer(IFNAMSIZ));
  if (!libc.if_indextoname(index, ptr(buf))) return `#${index}`;
  const end = buf.indexOf(0);
  return new TextDecoder().decode(buf.subarray(0, end < 0 ? IFNAMSIZ : end));
}

function familyNumber(cidr: Cidr): number {
  if (cidr.address.length === 4) return AF_INET;
  if (cidr.address.length === 16) return AF_INET6;
  throw new Error(`address of ${cidr.address.length} bytes is neither IPv4 nor IPv6`);
}

/** A NETLINK_ROUTE socket. Not thread-safe; one request in flight at a time. */
export class RtNetlink {
  // Both buffers stay referenced by this object for its whole life: the kernel reads and writes
  // them through the addresses cached below (see docs/bun-dataplane.md, pitfalls 1 and 2).
  private readonly sendBuf = new Uint8Array(new ArrayBuffer(SEND_SIZE));
  private readonly recvBuf = new Uint8Array(new ArrayBuffer(RECV_SIZE));
  private readonly kernelAddr = new Uint8Array(new ArrayBuffer(SOCKADDR_NL_LEN));
  private readonly send = new DataView(this.sendBuf.buffer);
  private readonly recv = new DataView(this.recvBuf.buffer);
  private readonly sendPtr = ptr(this.sendBuf);
  private readonly recvPtr = ptr(this.recvBuf);
  private readonly kernelAddrPtr = ptr(this.kernelAddr);
  private seq = (Date.now() & 0x7fffffff) >>> 0;
  private length = 0; // bytes of the request being built

  private constructor(private fd: number) {
    new DataView(this.kernelAddr.buffer).setUint16(0, AF_NETLINK, true); // nl_pid 0 = kernel
  }

  static open(): RtNetlink {
    const fd = libc.socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE);
    if (fd < 0) throw new NetlinkError("open rtnetlink socket", errno(), undefined, PERMISSION_HINTS[errno()]);
    const nl = new RtNetlink(fd);
    try {
      const local = new Uint8Array(new ArrayBuffer(SOCKADDR_NL_LEN));
      new DataView(local.buffer).setUint16(0, AF_NETLINK, true); // nl_pid 0: kernel assigns one
      if (libc.bind(fd, ptr(local), SOCKADDR_NL_LEN) < 0) throw new NetlinkError("bind rtnetlink socket", errno());
      const one = new Uint8Array(new ArrayBuffer(4));
      new DataView(one.buffer).setInt32(0, 1, true);
      // Both are optional niceties (kernel >= 4.3 / 4.12); ignore failure.
      libc.setsockopt(fd, SOL_NETLINK, NETLINK_CAP_ACK, ptr(one), 4);
      libc.setsockopt(fd, SOL_NETLINK, NETLINK_EXT_ACK, ptr(one), 4);
      const tv = new Uint8Array(new ArrayBuffer(16));
      new DataView(tv.buffer).setBigInt64(0, BigInt(REPLY_TIMEOUT_S), true);
      if (libc.setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, ptr(tv), 16) < 0) {
        throw new NetlinkError("set rtnetlink receive timeout", errno());
      }
    } catch (e) {
      nl.close();
      throw e;
    }
    return nl;
  }

  close(): void {
    if (this.fd >= 0) libc.close(this.fd);
    this.fd = -1;
  }

  setMtu(ifindex: number, mtu: number): void {
    if (!Number.isInteger(mtu) || mtu < 68 || mtu > 65535) throw new Error(`MTU ${mtu} is not in 68-65535`);
    this.linkRequest(RTM_NEWLINK, ifindex, 0, 0);
    this.u32Attr(IFLA_MTU, mtu);
    this.exchange(`set MTU ${mtu} on ${interfaceName(ifindex)}`);
  }

  setUp(ifindex: number): void {
    this.linkRequest(RTM_NEWLINK, ifindex, IFF_UP, IFF_UP);
    this.exchange(`set ${interfaceName(ifindex)} up`);
  }

  setDown(ifindex: number): void {
    this.linkRequest(RTM_NEWLINK, ifindex, 0, IFF_UP);
    this.exchange(`set ${interfaceName(ifindex)} down`);
  }

  /** Deletes the interface (for a TUN device, closing its fd does the same). */
  deleteLink(ifindex: number): void {
    const name = interfaceName(ifindex);
    this.linkRequest(RTM_DELLINK, ifindex, 0, 0);
    this.exchange(`delete interface ${name}`);
  }

  /**
   * Adds `cidr` (address with host bits, and its prefix length) to the interface. IPv6
   * addresses skip duplicate address detection. Returns false if it was already there.
   */
  addAddress(ifindex: number, cidr: Cidr): boolean {
    const family = familyNumber(cidr);
    this.begin(RTM_NEWADDR, NLM_F_CREATE | NLM_F_EXCL, IFADDRMSG_LEN);
    const at = NLMSG_HDRLEN;
    this.send.setUint8(at + IFA_FAMILY, family);
    this.send.setUint8(at + IFA_PREFIXLEN, cidr.prefix);
    this.send.setUint8(at + IFA_FLAGS_OFF, family === AF_INET6 ? IFA_F_NODAD : 0);
    this.send.setUint8(at + IFA_SCOPE, RT_SCOPE_UNIVERSE);
    this.send.setUint32(at + IFA_INDEX, ifindex, true);
    this.bytesAttr(IFA_LOCAL, cidr.address);
    this.bytesAttr(IFA_ADDRESS, cidr.address);
    return this.exchange(`add address ${formatIp(cidr.address)}/${cidr.prefix} to ${interfaceName(ifindex)}`, EEXIST);
  }

  /** Removes address `cidr` from the interface. Returns false if it was not there. */
  deleteAddress(ifindex: number, cidr: Cidr): boolean {
    const family = familyNumber(cidr);
    this.begin(RTM_DELADDR, 0, IFADDRMSG_LEN);
    const at = NLMSG_HDRLEN;
    this.send.setUint8(at + IFA_FAMILY, family);
    this.send.setUint8(at + IFA_PREFIXLEN, cidr.prefix);
    this.send.setUint32(at + IFA_INDEX, ifindex, true);
    this.bytesAttr(IFA_LOCAL, cidr.address);
    return this.exchange(`delete address ${formatIp(cidr.address)}/${cidr.prefix} from ${interfaceName(ifindex)}`, EADDRNOTAVAIL);
  }

  /**
   * Adds a device route (scope link, main table) for `cidr` via the interface. Host bits are
   * cleared first. Returns false if the same route was already there.
   */
  addRoute(ifindex: number, cidr: Cidr): boolean {
    const dst = maskAddress(cidr.address, cidr.prefix);
    this.routeRequest(RTM_NEWROUTE, NLM_F_CREATE | NLM_F_EXCL, ifindex, cidr, dst);
    return this.exchange(`add route ${formatCidr({ address: dst, prefix: cidr.prefix })} dev ${interfaceName(ifindex)}`, EEXIST);
  }

  /** Deletes the route to `cidr` via the interface. Returns false if there was no such route. */
  deleteRoute(ifindex: number, cidr: Cidr): boolean {
    const dst = maskAddress(cidr.address, cidr.prefix);
    this.routeRequest(RTM_DELROUTE, 0, ifindex, cidr, dst);
    return this.exchange(`delete route ${formatCidr({ address: dst, prefix: cidr.prefix })} dev ${interfaceName(ifindex)}`, ESRCH);
  }

  /**
   * Adds a device route for `cidr` in routing table `table` (any id, e.g. 51820). Returns false
   * if a route to the same prefix with the same metric is already in that table (EEXIST).
   */
  addTableRoute(ifindex: number, cidr: Cidr, table: number): boolean {
    const dst = maskAddress(cidr.address, cidr.prefix);
    this.routeRequest(RTM_NEWROUTE, NLM_F_CREATE | NLM_F_EXCL, ifindex, cidr, dst, table);
    return this.exchange(`add route ${formatCidr({ address: dst, prefix: cidr.prefix })} dev ${interfaceName(ifindex)} table ${table}`, EEXIST);
  }

  /** Deletes the route to `cidr` via the interface from table `table`; false if it was not there. */
  deleteTableRoute(ifindex: number, cidr: Cidr, table: number): boolean {
    const dst = maskAddress(cidr.address, cidr.prefix);
    this.routeRequest(RTM_DELROUTE, 0, ifindex, cidr, dst, table);
    return this.exchange(`delete route ${formatCidr({ address: dst, prefix: cidr.prefix })} dev ${interfaceName(ifindex)} table ${table}`, ESRCH);
  }

  /** Adds a policy routing rule (`ip rule add`); false if an identical rule exists (EEXIST). */
  addRule(rule: RoutingRule): boolean {
    this.ruleRequest(RTM_NEWRULE, NLM_F_CREATE | NLM_F_EXCL, rule);
    return this.exchange(`add rule ${describeRule(rule)}`, EEXIST);
  }

  /** Deletes the first rule matching `rule`'s attributes (`ip rule del`); false if none matched. */
  deleteRule(rule: RoutingRule): boolean {
    this.ruleRequest(RTM_DELRULE, 0, rule);
    return this.exchange(`delete rule ${describeRule(rule)}`, ENOENT);
  }

  /** Every route of `family` (4 or 6) in every table, as the kernel lists them. */
  listRoutes(family: 4 | 6): RouteEntry[] {
    this.begin(RTM_GETROUTE, NLM_F_DUMP, RTMSG_LEN);
    this.send.setUint8(NLMSG_HDRLEN + RTM_FAMILY, family === 6 ? AF_INET6 : AF_INET);
    const out: RouteEntry[] = [];
    this.dump(`list IPv${family} routes`, (at, end) => {
      const attrs = this.attributes(at + RTMSG_LEN, end);
      const dstLen = this.recv.getUint8(at + RTM_DST_LEN);
      const dst = attrs.get(RTA_DST);
      const table = attrs.get(RTA_TABLE);
      const oif = attrs.get(RTA_OIF);
      const metric = attrs.get(RTA_PRIORITY);
      out.push({
        family,
        dst: { address: dst ? this.recvBuf.slice(dst, dst + (family === 6 ? 16 : 4)) : new Uint8Array(family === 6 ? 16 : 4), prefix: dstLen },
        table: table !== undefined ? this.recv.getUint32(table, true) : this.recv.getUint8(at + RTM_TABLE),
        oif: oif !== undefined ? this.recv.getUint32(oif, true) : 0,
        metric: metric !== undefined ? this.recv.getUint32(metric, true) : 0,
        type: this.recv.getUint8(at + RTM_TYPE),
      });
    });
    return out;
  }

  /**
   * The route the kernel picks for `address` (`ip route get ADDRESS`): its output interface and
   * its MTU metric (set on the route, or learned by path-MTU discovery) if it has one. Null when
   * there is no route (ENETUNREACH, EHOSTUNREACH) or it leaves through no interface.
   */
  routeTo(address: Uint8Array): { oif: number; mtu: number | undefined } | null {
    this.begin(RTM_GETROUTE, 0, RTMSG_LEN);
    this.send.setUint8(NLMSG_HDRLEN + RTM_FAMILY, address.length === 16 ? AF_INET6 : AF_INET);
    this.send.setUint8(NLMSG_HDRLEN + RTM_DST_LEN, address.length * 8);
    this.bytesAttr(RTA_DST, address);
    let route: { oif: number; mtu: number | undefined } | null = null;
    const answered = this.query(`look up the route to ${formatIp(address)}`, [ENETUNREACH, EHOSTUNREACH], (at, end) => {
      const attrs = this.attributes(at + RTMSG_LEN, end);
      const oif = attrs.get(RTA_OIF);
      const metrics = attrs.get(RTA_METRICS);
      let mtu: number | undefined;
      if (metrics !== undefined) {
        const nested = this.attributes(metrics, metrics + this.recv.getUint16(metrics - RTA_HDRLEN + RTA_LEN, true) - RTA_HDRLEN);
        const mtuAt = nested.get(RTAX_MTU);
        if (mtuAt !== undefined) mtu = this.recv.getUint32(mtuAt, true) || undefined;
      }
      if (oif !== undefined) route = { oif: this.recv.getUint32(oif, true), mtu };
    });
    return answered ? route : null;
  }

  /** The MTU of interface `ifindex` (`ip link show`). */
  linkMtu(ifindex: number): number {
    this.linkRequest(RTM_GETLINK, ifindex, 0, 0);
    let mtu = 0;
    this.query(`read the MTU of ${interfaceName(ifindex)}`, [], (at, end) => {
      const value = this.attributes(at + IFINFOMSG_LEN, end).get(IFLA_MTU);
      if (value !== undefined) mtu = this.recv.getUint32(value, true);
    });
    if (mtu === 0) throw new Error(`read the MTU of ${interfaceName(ifindex)}: the kernel's answer has none`);
    return mtu;
  }

  /** Every policy routing rule of `family` (4 or 6), as `ip rule show` lists them. */
  listRules(family: 4 | 6): RoutingRuleEntry[] {
    this.begin(RTM_GETRULE, NLM_F_DUMP, FRH_LEN);
    this.send.setUint8(NLMSG_HDRLEN + FRH_FAMILY, family === 6 ? AF_INET6 : AF_INET);
    const out: RoutingRuleEntry[] = [];
    this.dump(`list IPv${family} rules`, (at, end) => {
      const attrs = this.attributes(at + FRH_LEN, end);
      const u32 = (type: number) => { const a = attrs.get(type); return a === undefined ? undefined : this.recv.getUint32(a, true); };
      const suppress = u32(FRA_SUPPRESS_PREFIXLEN);
      out.push({
        family,
        table: u32(FRA_TABLE) ?? this.recv.getUint8(at + FRH_TABLE),
        priority: u32(FRA_PRIORITY) ?? 0,
        fwmark: u32(FRA_FWMARK),
        invert: (this.recv.getUint32(at + FRH_FLAGS, true) & FIB_RULE_INVERT) !== 0,
        // The kernel reports "no suppression" as -1 (0xffffffff).
        suppressPrefixLength: suppress === undefined || suppress === 0xffffffff ? undefined : suppress,
      });
    });
    return out;
  }

  // --- request building -------------------------------------------------------------------

  private begin(type: number, flags: number, payloadLen: number): void {
    if (this.fd < 0) throw new Error("rtnetlink socket is closed");
    this.sendBuf.fill(0, 0, NLMSG_HDRLEN + payloadLen);
    this.send.setUint16(NLH_TYPE, type, true);
    this.send.setUint16(NLH_FLAGS, NLM_F_REQUEST | NLM_F_ACK | flags, true);
    this.seq = (this.seq + 1) >>> 0;
    this.send.setUint32(NLH_SEQ, this.seq, true);
    this.send.setUint32(NLH_PID, 0, true);
    this.length = NLMSG_HDRLEN + payloadLen;
  }

  private linkRequest(type: number, ifindex: number, flags: number, change: number): void {
    this.begin(type, 0, IFINFOMSG_LEN);
    const at = NLMSG_HDRLEN;
    this.send.setUint8(at + IFI_FAMILY, 0);
    this.send.setUint16(at + IFI_TYPE, 0, true);
    this.send.setInt32(at + IFI_INDEX, ifindex, true);
    this.send.setUint32(at + IFI_FLAGS, flags, true);
    this.send.setUint32(at + IFI_CHANGE, change, true);
  }

  private routeRequest(type: number, flags: number, ifindex: number, cidr: Cidr, dst: Uint8Array, table = RT_TABLE_MAIN): void {
    const family = familyNumber(cidr);
    const adding = type === RTM_NEWROUTE;
    this.begin(type, flags, RTMSG_LEN);
    const at = NLMSG_HDRLEN;
    this.send.setUint8(at + RTM_FAMILY, family);
    this.send.setUint8(at + RTM_DST_LEN, cidr.prefix);
    this.send.setUint8(at + RTM_SRC_LEN, 0);
    this.send.setUint8(at + RTM_TOS, 0);
    this.send.setUint8(at + RTM_TABLE, table < 256 ? table : RT_TABLE_UNSPEC);
    // A delete leaves protocol and type 0 and scope NOWHERE: "match any".
    this.send.setUint8(at + RTM_PROTOCOL, adding ? RTPROT_BOOT : 0);
    this.send.setUint8(at + RTM_SCOPE, adding ? RT_SCOPE_LINK : RT_SCOPE_NOWHERE);
    this.send.setUint8(at + RTM_TYPE, adding ? RTN_UNICAST : 0);
    this.send.setUint32(at + RTM_FLAGS, 0, true);
    if (cidr.prefix > 0) this.bytesAttr(RTA_DST, dst);
    this.u32Attr(RTA_OIF, ifindex);
    if (table !== RT_TABLE_MAIN) this.u32Attr(RTA_TABLE, table);
  }

  private ruleRequest(type: number, flags: number, rule: RoutingRule): void {
    this.begin(type, flags, FRH_LEN);
    const at = NLMSG_HDRLEN;
    this.send.setUint8(at + FRH_FAMILY, rule.family === 6 ? AF_INET6 : AF_INET);
    this.send.setUint8(at + FRH_TABLE, rule.table < 256 ? rule.table : RT_TABLE_UNSPEC);
    this.send.setUint8(at + FRH_ACTION, FR_ACT_TO_TBL);
    this.send.setUint32(at + FRH_FLAGS, rule.invert ? FIB_RULE_INVERT : 0, true);
    this.u32Attr(FRA_TABLE, rule.table);
    if (rule.priority !== undefined) this.u32Attr(FRA_PRIORITY, rule.priority);
    if (rule.fwmark !== undefined) {
      this.u32Attr(FRA_FWMARK, rule.fwmark);
      this.u32Attr(FRA_FWMASK, 0xffffffff);
    }
    if (rule.suppressPrefixLength !== undefined) this.u32Attr(FRA_SUPPRESS_PREFIXLEN, rule.suppressPrefixLength);
  }

  private attrHeader(type: number, dataLen: number): number {
    const at = this.length;
    const total = RTA_HDRLEN + dataLen;
    if (at + align4(total) > SEND_SIZE) throw new Error("rtnetlink request too large");
    this.sendBuf.fill(0, at, at + align4(total));
    this.send.setUint16(at + RTA_LEN, total, true);
    this.send.setUint16(at + RTA_TYPE, type, true);
    this.length = at + align4(total);
    return at + RTA_HDRLEN;
  }

  private u32Attr(type: number, value: number): void {
    this.send.setUint32(this.attrHeader(type, 4), value, true);
  }

  private bytesAttr(type: number, bytes: Uint8Array): void {
    this.sendBuf.set(bytes, this.attrHeader(type, bytes.length));
  }

  // --- exchange ---------------------------------------------------------------------------

  private sendRequest(op: string): void {
    this.send.setUint32(NLH_LEN, this.length, true);
    const sent = libc.sendto(this.fd, this.sendPtr, this.length, 0, this.kernelAddrPtr, SOCKADDR_NL_LEN);
    if (sent < 0) throw new NetlinkError(`${op} (send)`, errno());
  }

  /** One datagram of the kernel's answer into recvBuf (retried on EINTR); its length. */
  private receive(op: string): number {
    for (;;) {
      const n = libc.recvfrom(this.fd, this.recvPtr, RECV_SIZE, 0, null, null);
      if (n >= 0) return n;
      const code = errno();
      if (code === EINTR) continue;
      if (code === EAGAIN) throw new Error(`${op}: no answer from the kernel within ${REPLY_TIMEOUT_S}s`);
      throw new NetlinkError(`${op} (receive)`, code);
    }
  }

  /**
   * Sends the built request and waits for its ACK. Returns true on success, false if the kernel
   * answered with `tolerated` (e.g. EEXIST); any other error throws a NetlinkError naming `op`.
   */
  private exchange(op: string, tolerated?: number): boolean {
    const accepted = tolerated === undefined ? [] : [tolerated];
    return this.converse(op, (off, len, type) => (type === NLMSG_ERROR ? this.ackResult(op, off, len, accepted) : undefined));
  }

  /**
   * Sends the built dump request and calls `each(payloadOffset, messageEnd)` for every message
   * of the answer until NLMSG_DONE. The offsets index recvBuf and are valid only during the call.
   */
  private dump(op: string, each: (at: number, end: number) => void): void {
    this.converse(op, (off, len, type) => {
      if (type === NLMSG_DONE) return true;
      if (type === NLMSG_ERROR) return this.ackResult(op, off, len, []);
      each(off + NLMSG_HDRLEN, off + len);
      return this.recv.getUint16(off + NLH_FLAGS, true) & NLM_F_MULTI ? undefined : true;
    });
  }

  /**
   * Sends the built request for one object and calls `each(payloadOffset, messageEnd)` with the
   * kernel's answer, then waits for the ACK that follows it. Returns false if the kernel refused
   * with one of `tolerated`; any other error throws a NetlinkError naming `op`.
   */
  private query(op: string, tolerated: readonly number[], each: (at: number, end: number) => void): boolean {
    return this.converse(op, (off, len, type) => {
      if (type === NLMSG_ERROR) return this.ackResult(op, off, len, tolerated);
      each(off + NLMSG_HDRLEN, off + len);
      return undefined;
    });
  }

  /**
   * Sends the built request and walks the kernel's answer, datagram by datagram: `visit(offset,
   * length, type)` sees each message of this request (others, such as a late ACK of an earlier
   * one, are skipped) until it returns a result, which this returns.
   */
  private converse<T>(op: string, visit: (off: number, len: number, type: number) => T | undefined): T {
    this.sendRequest(op);
    const seq = this.seq;
    for (;;) {
      const n = this.receive(op);
      for (let off = 0; off + NLMSG_HDRLEN <= n; ) {
        const len = this.recv.getUint32(off + NLH_LEN, true);
        if (len < NLMSG_HDRLEN || off + len > n) break; // malformed or truncated: skip datagram
        if (this.recv.getUint32(off + NLH_SEQ, true) === seq) {
          const result = visit(off, len, this.recv.getUint16(off + NLH_TYPE, true));
          if (result !== undefined) return result;
        }
        off += align4(len);
      }
    }
  }

  /** The NLMSG_ERROR message at `off`: true for an ACK, false for a `tolerated` error; others throw. */
  private ackResult(op: string, off: number, len: number, tolerated: readonly number[]): boolean {
    const code = -this.recv.getInt32(off + NLMSG_HDRLEN, true);
    if (code === 0) return true;
    if (tolerated.includes(code)) return false;
    const message = this.extAckMessage(off, len, this.recv.getUint16(off + NLH_FLAGS, true));
    throw new NetlinkError(op, code, message, PERMISSION_HINTS[code]);
  }

  /** The attributes between `from` and `end` in recvBuf: type → offset of its data. */
  private attributes(from: number, end: number): Map<number, number> {
    const out = new Map<number, number>();
    for (let at = from; at + RTA_HDRLEN <= end; ) {
      const alen = this.recv.getUint16(at + RTA_LEN, true);
      if (alen < RTA_HDRLEN || at + alen > end) break;
      out.set(this.recv.getUint16(at + RTA_TYPE, true) & 0x3fff, at + RTA_HDRLEN);
      at += align4(alen);
    }
    return out;
  }

  /** The kernel's extended-ACK text in the error message at `off`, if it sent one. */
  private extAckMessage(off: number, len: number, flags: number): string | undefined {
    if (!(flags & NLM_F_ACK_TLVS)) return undefined;
    // struct nlmsgerr: i32 error, then the echoed request (header only when NLM_F_CAPPED).
    const echoAt = off + NLMSG_HDRLEN + 4;
    const echoLen = flags & NLM_F_CAPPED ? NLMSG_HDRLEN : this.recv.getUint32(echoAt + NLH_LEN, true);
    const end = off + len;
    for (let at = echoAt + align4(echoLen); at + RTA_HDRLEN <= end; ) {
      const alen = this.recv.getUint16(at + RTA_LEN, true);
      if (alen < RTA_HDRLEN || at + alen > end) break;
      if ((this.recv.getUint16(at + RTA_TYPE, true) & 0x3fff) === NLMSGERR_ATTR_MSG) {
        let text = new TextDecoder().decode(this.recvBuf.subarray(at + RTA_HDRLEN, at + alen));
        const nul = text.indexOf("\0");
        if (nul >= 0) text = text.slice(0, nul);
        return text || undefined;
      }
      at += align4(alen);
    }
    return undefined;
  }
}

/** A policy routing rule that looks up `table`, as wg-quick adds them (`ip rule add ...`). */
export interface RoutingRule {
  family: 4 | 6;
  table: number;
  /** Omit to let the kernel pick (just before the first rule with a non-zero priority). */
  priority?: number;
  /** Match packets with this firewall mark (mask 0xffffffff). */
  fwmark?: number;
  /** `not`: the rule applies to packets that do NOT match its selectors. */
  invert?: boolean;
  /** Ignore answers from the table whose prefix is this long or shorter. */
  suppressPrefixLength?: number;
}

/** A rule as the kernel lists it. */
export interface RoutingRuleEntry extends RoutingRule {
  priority: number;
}

/** A route as the kernel lists it (only the fields wontun looks at). */
export interface RouteEntry {
  family: 4 | 6;
  dst: Cidr;
  table: number;
  /** Output interface index, 0 if none. */
  oif: number;
  metric: number;
  /** RTN_* (1 unicast, 2 local, 3 broadcast, ...). */
  type: number;
}

/** A rule in `ip rule`'s words, for messages: "not fwmark 0xca6c lookup 51820". */
export function describeRule(rule: RoutingRule): string {
  const parts = [`-${rule.family}`];
  if (rule.priority !== undefined) parts.push(`priority ${rule.priority}`);
  if (rule.invert) parts.push("not");
  if (rule.fwmark !== undefined) parts.push(`fwmark 0x${rule.fwmark.toString(16)}`);
  parts.push(`table ${rule.table === RT_TABLE_MAIN ? "main" : rule.table}`);
  if (rule.suppressPrefixLength !== undefined) parts.push(`suppress_prefixlength ${rule.suppressPrefixLength}`);
  return parts.join(" ");
}

export interface InterfaceSetup {
  /** Omit to leave the MTU as it is. */
  mtu?: number;
  /** Interface addresses, host bits kept (e.g. 10.0.0.1/24). */
  addresses: Cidr[];
  /** Device routes to add after the link is up (see routesFor). */
  routes: Cidr[];
}

/**
 * Configures interface `name`: MTU, addresses, link up, routes, in that order. Addresses and
 * routes that already exist are left alone.
 */
export function configureInterface(name: string, setup: InterfaceSetup): void {
  if (setup.mtu !== undefined && setup.mtu < 1280 && setup.addresses.some((a) => a.address.length === 16)) {
    // The kernel turns IPv6 off on links below 1280 bytes, dropping their IPv6 addresses.
    throw new Error(`${name}: MTU ${setup.mtu} is below 1280, the minimum for IPv6 addresses`);
  }
  const index = interfaceIndex(name);
  const nl = RtNetlink.open();
  try {
    if (setup.mtu !== undefined) nl.setMtu(index, setup.mtu);
    for (const address of setup.addresses) nl.addAddress(index, address);
    nl.setUp(index);
    for (const route of setup.routes) nl.addRoute(index, route);
  } finally {
    nl.close();
  }
}

/**
 * The routes to add for `allowedIps`, as wg-quick decides them: each AllowedIPs prefix (host
 * bits cleared) that is not already inside the prefix of one of the interface `addresses`
 * (whose prefix route the kernel adds by itself), without duplicates, in input order.
 * Full-length addresses (/32, /128) get no prefix route, so they cover nothing.
 * A default route (0.0.0.0/0, ::/0) is returned like any other; the caller decides about it.
 */
export function routesFor(addresses: Cidr[], allowedIps: Cidr[]): Cidr[] {
  const networks = addresses
    .filter((a) => a.prefix < a.address.length * 8)
    .map((a) => ({ address: maskAddress(a.address, a.prefix), prefix: a.prefix }));
  const seen = new Set<string>();
  const out: Cidr[] = [];
  for (const allowed of allowedIps) {
    const route = { address: maskAddress(allowed.address, allowed.prefix), prefix: allowed.prefix };
    const key = formatCidr(route);
    if (seen.has(key)) continue;
    seen.add(key);
    const covered = networks.some((n) => n.prefix <= route.prefix && cidrContains(n, route.address));
    if (!covered) out.push(route);
  }
  return out;
}
