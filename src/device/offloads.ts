// Which offloads the device uses, each behind its own switch so they can be compared (bench/)
// and turned off if a kernel or peer misbehaves. Set with `wontun up --offload LIST` or
// WONTUN_OFFLOAD=LIST; LIST is "all", "none", or names joined by commas.
//   tso  the kernel hands the TUN's reader TCP super-packets of up to 64 KiB (IFF_VNET_HDR +
//        TUNSETOFFLOAD); we cut them into MTU-sized packets (src/net/offload/segment.ts)
//   gro  consecutive TCP segments received in one batch are glued into one super-packet and
//        written to the TUN at once (src/net/offload/coalesce.ts)
//   udp-gso  runs of equal-sized datagrams to one peer leave in one sendmmsg message with
//        UDP_SEGMENT: one trip through the kernel's UDP/IP stack instead of one per datagram
//   udp-gro  UDP_GRO on the sockets: the kernel may deliver a run of datagrams from one sender
//        as one buffer, which we split; WireGuard mode only (the plaintext protocol's 5-byte
//        header leaves too little room to give each packet its vnet header in place)
//   uso  UDP segmentation offload on the TUN (Linux 6.2+; left out quietly before): a batch's
//        datagrams of one UDP flow are glued into one super-packet on write, as gro does for
//        TCP, and reads may be UDP super-packets (from a local sender using UDP_SEGMENT), cut
//        like TCP ones

export const OFFLOAD_NAMES = ["tso", "gro", "udp-gso", "udp-gro", "uso"] as const;
export type OffloadName = (typeof OFFLOAD_NAMES)[number];
export type Offloads = Readonly<Record<OffloadName, boolean>>;

export const ALL_OFFLOADS: Offloads = { tso: true, gro: true, "udp-gso": true, "udp-gro": true, uso: true };
export const NO_OFFLOADS: Offloads = { tso: false, gro: false, "udp-gso": false, "udp-gro": false, uso: false };

/** Parses an offload list; throws an Error saying what is wrong. */
export function parseOffloads(text: string): Offloads {
  const value = text.trim().toLowerCase();
  if (value === "all") return ALL_OFFLOADS;
  if (value === "none" || value === "") return NO_OFFLOADS;
  const chosen: Record<OffloadName, boolean> = { ...NO_OFFLOADS };
  for (const part of value.split(",")) {
    const name = part.trim();
    if (!(OFFLOAD_NAMES as readonly string[]).includes(name)) {
      throw new Error(`unknown offload "${name}": use all, none, or a comma-separated list of ${OFFLOAD_NAMES.join(", ")}`);
    }
    chosen[name as OffloadName] = true;
  }
  return chosen;
}

export function formatOffloads(offloads: Offloads): string {
  const on = OFFLOAD_NAMES.filter((name) => offloads[name]);
  return on.length ? on.join(",") : "none";
}
