// The four things the throughput bench compares, each set up between the lab's two hosts
// (a = 192.0.2.2, the iperf3 client; b = 192.0.2.1, the iperf3 server) over one veth pair.
// All four can be up at the same time: each has its own inner subnet, UDP port and interfaces.
import { newKeys, startWireguardGo, wgGoInterface, wgQuickConfig } from "../../test/helpers/wireguard.ts";
import { removeWgSocket, startWontunBench, waitFor, type BenchLab, type Host, type SpawnedProcess } from "./lab.ts";

export const KINDS = ["veth", "wg-go", "wontun-wg", "wontun-plain"] as const;
export type Kind = (typeof KINDS)[number];

export const KIND_LABELS: Record<Kind, string> = {
  veth: "bare veth",
  "wg-go": "wireguard-go",
  "wontun-wg": "wontun (WireGuard)",
  "wontun-plain": "wontun (plaintext)",
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
  switch (kind) {
    case "veth":
      return { kind, bAddress: B_UNDERLAY, procs: null, mtu: 1500 };
    case "wg-go":
      return startWgGo(env, a, b);
    case "wontun-wg":
      return startWontunWg(env, a, b);
    case "wontun-plain":
      return startWontunPlain(env, a, b);
  }
}

async function startWgGo(env: BenchLab, a: Host, b: Host): Promise<Tunnel> {
  const ka = newKeys();
  const kb = newKeys();
  const ifA = wgGoInterface(env.lab, "a");
  const ifB = wgGoInterface(env.lab, "b");
  env.onCleanup(() => {
    removeWgSocket(ifA);
    removeWgSocket(ifB);
  });
  const port = 51820;
  const pb = await startWireguardGo(b, env.dir, ifB, {
    keys: kb,
    addresses: ["10.20.0.1/24"],
    listenPort: port,
    peers: [{ publicKey: ka.publicKey, allowedIps: ["10.20.0.2/32"], endpoint: `${A_UNDERLAY}:${port}` }],
  });
  const pa = await startWireguardGo(a, env.dir, ifA, {
    keys: ka,
    addresses: ["10.20.0.2/24"],
    listenPort: port,
    peers: [{ publicKey: kb.publicKey, allowedIps: ["10.20.0.1/32"], endpoint: `${B_UNDERLAY}:${port}` }],
  });
  return ready(a, { kind: "wg-go", bAddress: "10.20.0.1", procs: { a: pa, b: pb }, mtu: 1420 });
}

async function startWontunWg(env: BenchLab, a: Host, b: Host): Promise<Tunnel> {
  const ka = newKeys();
  const kb = newKeys();
  const port = 51821;
  const confB = env.dir.write("wtwg-b.conf", wgQuickConfig({
    keys: kb,
    addresses: ["10.30.0.1/24"],
    listenPort: port,
    peers: [{ publicKey: ka.publicKey, allowedIps: ["10.30.0.2/32"], endpoint: `${A_UNDERLAY}:${port}` }],
  }));
  const confA = env.dir.write("wtwg-a.conf", wgQuickConfig({
    keys: ka,
    addresses: ["10.30.0.2/24"],
    listenPort: port,
    peers: [{ publicKey: kb.publicKey, allowedIps: ["10.30.0.1/32"], endpoint: `${B_UNDERLAY}:${port}` }],
  }));
  const pb = (await startWontunBench(b, confB)).proc;
  const pa = (await startWontunBench(a, confA)).proc;
  return ready(a, { kind: "wontun-wg", bAddress: "10.30.0.1", procs: { a: pa, b: pb }, mtu: 1420 });
}

function plainConfig(self: string, address: string, peer: string, peerUnderlay: string, peerInner: string): string {
  return [
    "[Interface]",
    `Name=${self}`,
    `Address=${address}`,
    "ListenPort=19988",
    "",
    "[Peer]",
    `Name=${peer}`,
    `Endpoint=${peerUnderlay}:19988`,
    `AllowedIPs=${peerInner}/32`,
    "",
  ].join("\n");
}

async function startWontunPlain(env: BenchLab, a: Host, b: Host): Promise<Tunnel> {
  const confB = env.dir.write("wtpl-b.conf", plainConfig("bench-b", "10.40.0.1/24", "bench-a", A_UNDERLAY, "10.40.0.2"));
  const confA = env.dir.write("wtpl-a.conf", plainConfig("bench-a", "10.40.0.2/24", "bench-b", B_UNDERLAY, "10.40.0.1"));
  const pb = (await startWontunBench(b, confB)).proc;
  const pa = (await startWontunBench(a, confA)).proc;
  return ready(a, { kind: "wontun-plain", bAddress: "10.40.0.1", procs: { a: pa, b: pb }, mtu: 1400 });
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
