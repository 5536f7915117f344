// WireGuard hosts for integration tests: wontun in WireGuard mode and stock wireguard-go, set up
// the way their users would (wg-quick style config for wontun; `wg set` + `ip` for wireguard-go).
import { existsSync } from "node:fs";
import { generatePrivateKey, publicKeyOf, encodeKey, generatePresharedKey } from "../../src/crypto/keys.ts";
import { waitFor, type Host, type Lab, type SpawnedProcess } from "./netns.ts";
import type { ConfigDir } from "./wontun-node.ts";

export const hasWireguardGo = Bun.which("wireguard-go") !== null && Bun.which("wg") !== null;

export interface WgKeys {
  privateKey: string;
  publicKey: string;
}

export function newKeys(): WgKeys {
  const priv = generatePrivateKey();
  return { privateKey: encodeKey(priv), publicKey: encodeKey(publicKeyOf(priv)) };
}

export function newPsk(): string {
  return encodeKey(generatePresharedKey());
}

export interface WgPeerSetup {
  publicKey: string;
  allowedIps: string[];
  endpoint?: string;
  psk?: string;
  keepalive?: number;
}

export interface WgHostSetup {
  keys: WgKeys;
  addresses: string[];
  listenPort?: number;
  /** Written as `MTU =` when set; wontun's default applies otherwise. */
  mtu?: number;
  peers: WgPeerSetup[];
}

/** A wg-quick style config text for wontun. */
export function wgQuickConfig(setup: WgHostSetup): string {
  const lines = ["[Interface]", `PrivateKey = ${setup.keys.privateKey}`, `Address = ${setup.addresses.join(", ")}`];
  if (setup.listenPort) lines.push(`ListenPort = ${setup.listenPort}`);
  if (setup.mtu) lines.push(`MTU = ${setup.mtu}`);
  for (const p of setup.peers) {
    lines.push("", "[Peer]", `PublicKey = ${p.publicKey}`, `AllowedIPs = ${p.allowedIps.join(", ")}`);
    if (p.endpoint) lines.push(`Endpoint = ${p.endpoint}`);
    if (p.psk) lines.push(`PresharedKey = ${p.psk}`);
    if (p.keepalive) lines.push(`PersistentKeepalive = ${p.keepalive}`);
  }
  return `${lines.join("\n")}\n`;
}

/** A unique interface name for wireguard-go: its control socket lives in /var/run/wireguard. */
export function wgGoInterface(lab: Lab, suffix: string): string {
  return `wg${lab.id.slice(2)}${suffix}`.slice(0, 15);
}

/** Starts wireguard-go in `host` and configures it with `wg` and `ip`. */
export async function startWireguardGo(host: Host, dir: ConfigDir, ifname: string, setup: WgHostSetup): Promise<SpawnedProcess> {
  const proc = host.spawn(["wireguard-go", "-f", ifname], { env: { WG_PROCESS_FOREGROUND: "1", LOG_LEVEL: "error" } });
  await waitFor(() => existsSync(`/var/run/wireguard/${ifname}.sock`), 5000, `wireguard-go ${ifname} control socket`);
  const keyFile = dir.write(`${ifname}.key`, `${setup.keys.privateKey}\n`);
  const args = ["wg", "set", ifname, "private-key", keyFile];
  if (setup.listenPort) args.push("listen-port", String(setup.listenPort));
  for (const p of setup.peers) {
    args.push("peer", p.publicKey, "allowed-ips", p.allowedIps.join(","));
    if (p.endpoint) args.push("endpoint", p.endpoint);
    if (p.psk) args.push("preshared-key", dir.write(`${ifname}-${p.publicKey.slice(0, 6).replace(/\W/g, "")}.psk`, `${p.psk}\n`));
    if (p.keepalive) args.push("persistent-keepalive", String(p.keepalive));
  }
  const r = await host.run(args);
  if (r.code !== 0) throw new Error(`wg set failed: ${r.stderr}`);
  for (const a of setup.addresses) await host.ip(`addr add ${a} dev ${ifname}${a.includes(":") ? " nodad" : ""}`);
  await host.ip(`link set ${ifname} mtu 1420 up`);
  for (const p of setup.peers) {
    for (const cidr of p.allowedIps) {
      // Routes the interface's own prefixes do not cover, as wg-quick adds them.
      if (!setup.addresses.some((a) => sameNetwork(a, cidr))) await host.ip(`route add ${cidr} dev ${ifname}`);
    }
  }
  return proc;
}

function sameNetwork(address: string, cidr: string): boolean {
  const [a, ap] = address.split("/");
  const [c, cp] = cidr.split("/");
  if (a.includes(":") !== c.includes(":")) return false;
  if (Number(cp) < Number(ap)) return false;
  // Compare the textual prefix for the simple cases our tests use (/24 v4, /64 v6).
  if (!a.includes(":")) return a.split(".").slice(0, Number(ap) / 8).join(".") === c.split(".").slice(0, Number(ap) / 8).join(".");
  return a.split(":").slice(0, 4).join(":") === c.split(":").slice(0, 4).join(":");
}

/**
 * Sends `megabytes` of random data over TCP from `sender` to `receiver`:`address`, and returns the
 * sha256 of what was sent and of what arrived.
 */
export async function transfer(sender: Host, receiver: Host, address: string, megabytes: number, port = 9000): Promise<{ sent: string; received: string }> {
  const file = `/tmp/wontun-xfer-${process.pid}-${port}-${Math.random().toString(36).slice(2)}`;
  const listen = address.includes(":") ? `${address}` : address;
  const sink = receiver.spawn(["sh", "-c", `nc -N -l ${listen} ${port} | sha256sum`]);
  try {
    const made = await sender.run(["sh", "-c", `head -c ${megabytes}M /dev/urandom > ${file} && sha256sum < ${file}`], { timeoutMs: 30_000 });
    const sent = made.stdout.split(" ")[0];
    await waitFor(async () => {
      const r = await sender.run(["sh", "-c", `nc -N -w 10 ${address} ${port} < ${file}`], { timeoutMs: 60_000 });
      return r.code === 0;
    }, 60_000, `transfer to ${address}:${port}`);
    await sink.exited;
    return { sent, received: sink.output().trim().split(" ")[0] };
  } finally {
    await sender.run(["rm", "-f", file]);
  }
}
