// What the throughput bench compares, each set up between the lab's two hosts (a = 192.0.2.2,
// the iperf3 client; b = 192.0.2.1, the iperf3 server) over one veth pair: bare veth, the
// current wireguard-go, Debian's wireguard-go, a socat relay (the floor of a userspace tunnel),
// and wontun variants. All can be up at the same time: each has its own inner subnet, UDP port
// and interfaces (named after the lab, so that the control sockets in /var/run/wireguard are
// unique to the run).
import { newKeys, wgQuickConfig } from "../../test/helpers/wireguard.ts";
import { ifName, removeWgSocket, startWontunBench, waitFor, type BenchLab, type Host, type SpawnedProcess } from "./lab.ts";
import { findWireguardGo, startWgGoBuild, type WgGoKind } from "./wg-go.ts";
import { DEFAULT_MTU_WIREGUARD, DEFAULT_MTU_WONTUN } from "../../src/config/model.ts";

/**
 * wontun variants: the two modes with every offload (the headline figures), the ladder that
 * shows what each offload buys: none, then TSO, then TSO + GRO (all = TSO + GRO + UDP GSO + UDP
 * GRO + USO), all but USO, the WireGuard mode on 2 data-path threads (--threads 2; the others
 * run on 1; and again with WONTUN_TUN_STEERING=0, where a flow's packets follow its peer's
 * receiving thread instead of spreading by hash), the WireGuard mode with wg-quick's MTU of 1420 instead of wontun's 1408 (the
 * MTU wireguard-go runs with here), and with WONTUN_LINGER=0 (the loop does not wait for the
 * answer to what it sent before it visits Bun's event loop: what that costs a ping). The last
 * three turn off one data-path technique each (src/switches.ts): checksums summed a byte at a
 * time, every inner TCP checksum verified before coalescing, and super-packets copied together
 * before the TUN write instead of written with writev.
 */
const WONTUN_VARIANTS = {
  "wontun-wg": { mode: "wg", offload: "all", net: 30, label: "wontun (WireGuard)" },
  "wontun-wg-t2": { mode: "wg", offload: "all", net: 34, label: "wontun WG, 2 threads", threads: 2 },
  "wontun-wg-t2-automq": { mode: "wg", offload: "all", net: 43, label: "wontun WG, 2 threads, kernel's queue choice", threads: 2, env: { WONTUN_TUN_STEERING: "0" } },
  "wontun-plain": { mode: "plain", offload: "all", net: 40, label: "wontun (plaintext)" },
  "wontun-wg-none": { mode: "wg", offload: "none", net: 31, label: "wontun WG, no offloads" },
  "wontun-wg-tso": { mode: "wg", offload: "tso", net: 32, label: "wontun WG, tso" },
  "wontun-wg-tso-gro": { mode: "wg", offload: "tso,gro", net: 33, label: "wontun WG, tso+gro" },
  "wontun-wg-no-uso": { mode: "wg", offload: "tso,gro,udp-gso,udp-gro", net: 35, label: "wontun WG, all but uso" },
  "wontun-wg-mtu1420": { mode: "wg", offload: "all", net: 36, label: "wontun WG, MTU 1420", mtu: 1420 },
  "wontun-wg-no-linger": { mode: "wg", offload: "all", net: 37, label: "wontun WG, no linger", env: { WONTUN_LINGER: "0" } },
  "wontun-wg-byte-csum": { mode: "wg", offload: "all", net: 38, label: "wontun WG, byte checksums", env: { WONTUN_WIDE_CSUM: "0" } },
  "wontun-wg-verify-csum": { mode: "wg", offload: "all", net: 39, label: "wontun WG, inner checksums verified", env: { WONTUN_TRUST_INNER_CSUM: "0" } },
  "wontun-wg-no-writev": { mode: "wg", offload: "all", net: 42, label: "wontun WG, no writev", env: { WONTUN_TUN_WRITEV: "0" } },
  "wontun-plain-none": { mode: "plain", offload: "none", net: 41, label: "wontun plain, no offloads" },
} as const;
type WontunKind = keyof typeof WONTUN_VARIANTS;

export const KINDS = ["veth", "wg-go-current", "wg-go", "socat", ...(Object.keys(WONTUN_VARIANTS) as WontunKind[])] as const;
export type Kind = (typeof KINDS)[number];

/** wireguard-go builds: the current upstream one (the reference) and Debian's (bench/lib/wg-go.ts). */
const WG_GO_VARIANTS: Record<WgGoKind, { net: number; port: number }> = {
  "wg-go-current": { net: 21, port: 51821 },
  "wg-go": { net: 20, port: 51820 },
};

export const KIND_LABELS: Record<Kind, string> = {
  veth: "bare veth",
  "wg-go-current": "wireguard-go (current)",
  "wg-go": "wireguard-go (Debian)",
  socat: "socat relay (no crypto)",
  ...(Object.fromEntries(Object.entries(WONTUN_VARIANTS).map(([k, v]) => [k, v.label])) as Record<WontunKind, string>),
};

export const A_UNDERLAY = "192.0.2.2";
export const B_UNDERLAY = "192.0.2.1";

export interface Tunnel {
  kind: Kind;
  /** Where host a reaches host b through this kind (iperf3 and ping target). */
  bAddress: string;
  /** The tunnel process on each host (null for bare veth). */
  procs: { a: SpawnedProcess; b: SpawnedProcess } | null;
  /** Inner MTU, for the record. */
  mtu: number;
}

export async function setupHosts(env: BenchLab): Promise<{ a: Host; b: Host }> {
  const a = await env.lab.host("a");
  const b = await env.lab.host("b");
  await env.lab.link(a, `${A_UNDERLAY}/24`, b, `${B_UNDERLAY}/24`);
  return { a, b };
}

export async function startTunnel(kind: Kind, env: BenchLab, a: Host, b: Host): Promise<Tunnel> {
  if (kind === "veth") return { kind, bAddress: B_UNDERLAY, procs: null, mtu: 1500 };
  if (kind === "wg-go" || kind === "wg-go-current") return startWgGo(kind, env, a, b);
  if (kind === "socat") return startSocat(env, a, b);
  return startWontun(kind, env, a, b);
}

async function startWgGo(kind: WgGoKind, env: BenchLab, a: Host, b: Host): Promise<Tunnel> {
  const builds = findWireguardGo();
  const build = kind === "wg-go-current" ? builds.current : builds.debian;
  if (!build) throw new Error(`${KIND_LABELS[kind]} is not available`);
  const { net, port } = WG_GO_VARIANTS[kind];
  const ka = newKeys();
  const kb = newKeys();
  const ifA = ifName(env.lab, `wg${net}a`);
  const ifB = ifName(env.lab, `wg${net}b`);
  env.onCleanup(() => {
    removeWgSocket(ifA);
    removeWgSocket(ifB);
  });
  const pb = await startWgGoBuild(build, b, env.dir, ifB, {
    keys: kb,
    addresses: [`10.${net}.0.1/24`],
    listenPort: port,
    peers: [{ publicKey: ka.publicKey, allowedIps: [`10.${net}.0.2/32`], endpoint: `${A_UNDERLAY}:${port}` }],
  });
  const pa = await startWgGoBuild(build, a, env.dir, ifA, {
    keys: ka,
    addresses: [`10.${net}.0.2/24`],
    listenPort: port,
    peers: [{ publicKey: kb.publicKey, allowedIps: [`10.${net}.0.1/32`], endpoint: `${B_UNDERLAY}:${port}` }],
  });
  return ready(a, { kind, bAddress: `10.${net}.0.1`, procs: { a: pa, b: pb }, mtu: 1420 });
}

/** socat's inner subnet 10.N.0.0/24 (wireguard-go uses 20-21, the wontun variants 30-43). */
const SOCAT_NET = 25;

/**
 * The floor of a userspace tunnel on this machine: one socat process per end copying each
 * packet between a TUN device and a UDP socket, one read and one write per packet, no crypto,
 * no batching, no offloads. It pays little more than waking a process and crossing the kernel
 * twice per packet, so a ping through it shows about the least RTT a userspace VPN has here.
 */
async function startSocat(env: BenchLab, a: Host, b: Host): Promise<Tunnel> {
  if (!Bun.which("socat")) throw new Error("socat is not installed (Debian: apt-get install socat)");
  const net = SOCAT_NET;
  const port = 19900 + net;
  const start = (host: Host, side: "a" | "b", self: string, peer: string, inner: string) => {
    const ifname = ifName(env.lab, `so${net}${side}`);
    const proc = host.spawn([
      "socat",
      `TUN:${inner}/24,tun-name=${ifname},iff-up,iff-no-pi`,
      // UDP-DATAGRAM (unconnected): a datagram sent before the other end is up is not an error.
      `UDP-DATAGRAM:${peer}:${port},bind=${self}:${port}`,
    ]);
    return { ifname, proc };
  };
  const sb = start(b, "b", B_UNDERLAY, A_UNDERLAY, `10.${net}.0.1`);
  const sa = start(a, "a", A_UNDERLAY, B_UNDERLAY, `10.${net}.0.2`);
  // wireguard-go's MTU, so that both carry the same TCP segments.
  for (const [host, s] of [[b, sb], [a, sa]] as const) {
    await waitFor(async () => {
      if (s.proc.proc.exitCode !== null) throw new Error(`socat ${s.ifname} exited:\n${s.proc.output().slice(-1500)}`);
      return (await host.run(["ip", "link", "show", s.ifname])).code === 0;
    }, 5000, `socat's ${s.ifname}`);
    await host.ip(`link set ${s.ifname} mtu 1420`);
  }
  return ready(a, { kind: "socat", bAddress: `10.${net}.0.1`, procs: { a: sa.proc, b: sb.proc }, mtu: 1420 });
}

async function startWontun(kind: WontunKind, env: BenchLab, a: Host, b: Host): Promise<Tunnel> {
  const v = WONTUN_VARIANTS[kind];
  // Each variant has its own inner subnet 10.N.0.0/24, UDP port and interface names.
  const inner = (host: 1 | 2) => `10.${v.net}.0.${host}`;
  const port = v.mode === "wg" ? 51800 + v.net : 19900 + v.net;
  const name = (side: string) => ifName(env.lab, `wt${v.net}${side}`);
  let confA: string;
  let confB: string;
  if (v.mode === "wg") {
    const ka = newKeys();
    const kb = newKeys();
    confB = wgQuickConfig({
      keys: kb,
      addresses: [`${inner(1)}/24`],
      listenPort: port,
      mtu: "mtu" in v ? v.mtu : undefined,
      peers: [{ publicKey: ka.publicKey, allowedIps: [`${inner(2)}/32`], endpoint: `${A_UNDERLAY}:${port}` }],
    });
    confA = wgQuickConfig({
      keys: ka,
      addresses: [`${inner(2)}/24`],
      listenPort: port,
      mtu: "mtu" in v ? v.mtu : undefined,
      peers: [{ publicKey: kb.publicKey, allowedIps: [`${inner(1)}/32`], endpoint: `${B_UNDERLAY}:${port}` }],
    });
  } else {
    confB = plainConfig(name("b"), `${inner(1)}/24`, port, name("a"), A_UNDERLAY, inner(2));
    confA = plainConfig(name("a"), `${inner(2)}/24`, port, name("b"), B_UNDERLAY, inner(1));
  }
  const args = ["--offload", v.offload, "--threads", String("threads" in v ? v.threads : 1)];
  const vars = "env" in v ? v.env : undefined;
  const pb = (await startWontunBench(b, env.dir.write(`${name("b")}.conf`, confB), { args, env: vars })).proc;
  const pa = (await startWontunBench(a, env.dir.write(`${name("a")}.conf`, confA), { args, env: vars })).proc;
  const mtu = "mtu" in v ? v.mtu : v.mode === "wg" ? DEFAULT_MTU_WIREGUARD : DEFAULT_MTU_WONTUN;
  return ready(a, { kind, bAddress: inner(1), procs: { a: pa, b: pb }, mtu });
}

function plainConfig(self: string, address: string, port: number, peer: string, peerUnderlay: string, peerInner: string): string {
  return [
    "[Interface]",
    `Name=${self}`,
    `Address=${address}`,
    `ListenPort=${port}`,
    "",
    "[Peer]",
    `Name=${peer}`,
    `Endpoint=${peerUnderlay}:${port}`,
    `AllowedIPs=${peerInner}/32`,
    "",
  ].join("\n");
}

/** Waits until a ping crosses the tunnel (the handshake is done). */
async function ready(a: Host, t: Tunnel): Promise<Tunnel> {
  await waitFor(async () => {
    for (const side of ["a", "b"] as const) {
      const p = t.procs?.[side].proc;
      if (p && (p.exitCode !== null || p.signalCode !== null)) {
        throw new Error(`${t.kind}: the process on ${side} exited:\n${t.procs![side].output()}`);
      }
    }
    const r = await a.run(["ping", "-n", "-c", "1", "-W", "1", t.bAddress], { timeoutMs: 3000 });
    return r.code === 0;
  }, 20_000, `a ping through ${t.kind}`);
  return t;
}
