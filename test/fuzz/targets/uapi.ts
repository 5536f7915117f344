// The control plane. parseSetRequest: mutated `set=1` bodies (both dialects) -> DeviceChange or
// ControlError only. Status: a random DeviceStatus -> formatStatusResponse -> parseStatusResponse
// -> formatStatusResponse gives the same text, and mutated answers parse or throw ControlError.
// Operations.apply on an in-memory Device with random DeviceChanges: ControlError with status()
// unchanged, or success; nothing else.
import { Device } from "../../../src/device/device.ts";
import { MemoryBind, MemoryNetwork } from "../../../src/device/bind-memory.ts";
import { MemoryTun } from "../../../src/device/tun-memory.ts";
import { WireGuardProtocol } from "../../../src/protocol/wireguard/protocol.ts";
import { WontunProtocol } from "../../../src/protocol/wontun/protocol.ts";
import { Operations } from "../../../src/control/operations.ts";
import { ControlError, type DeviceChange, type DeviceStatus, type PeerChange, type PeerStatus } from "../../../src/control/model.ts";
import { parseSetRequest } from "../../../src/control/uapi-set.ts";
import { formatStatusResponse, parseStatusResponse } from "../../../src/control/uapi-get.ts";
import { selectAeadBackend } from "../../../src/crypto/aead.ts";
import { publicKeyOf } from "../../../src/crypto/keys.ts";
import type { ConfigMode } from "../../../src/config/model.ts";
import type { Logger } from "../../../src/log.ts";
import { canonical, hex, invariant, shrinkArray, shrinkString, showText, type Target } from "../engine.ts";
import { mutateText, type TextDictionary } from "../mutate.ts";
import { Rng } from "../rng.ts";

const h = (b: Uint8Array) => hex(b);
function key(seed: number): Uint8Array {
  const k = new Rng(seed).bytes(32);
  k[0] &= 248;
  k[31] = (k[31] & 127) | 64;
  return k;
}
const PRIV = [key(1), key(2), key(3)];
const PUB = PRIV.map(publicKeyOf);

// ---- parseSetRequest ------------------------------------------------------------------------

const WG_BODIES = [
  `private_key=${h(PRIV[0])}\nlisten_port=51820\nfwmark=0\nreplace_peers=true\npublic_key=${h(PUB[1])}\npreshared_key=${h(PRIV[2])}\nendpoint=192.0.2.1:51820\npersistent_keepalive_interval=25\nreplace_allowed_ips=true\nallowed_ip=10.0.0.0/24\nallowed_ip=fd00::/64\nprotocol_version=1\n`,
  `public_key=${h(PUB[2])}\nupdate_only=true\nendpoint=[2001:db8::1]:51820\nallowed_ip=-10.0.0.0/24\npublic_key=${h(PUB[1])}\nremove=true\n`,
  `listen_port=0\nfwmark=4294967295\nprivate_key=${"0".repeat(64)}\n`,
  "",
];
const WONTUN_BODIES = [
  "listen_port=19988\nfwmark=1\nreplace_peers=true\nname=client-A\nendpoint=192.0.2.1:19988\npersistent_keepalive_interval=0\nreplace_allowed_ips=true\nallowed_ip=10.10.0.3/32\n",
  "name=client-B\nupdate_only=true\nallowed_ip=10.10.0.4/32\nname=client-A\nremove=true\n",
];
const SET_DICT: TextDictionary = {
  keys: ["private_key", "public_key", "preshared_key", "listen_port", "fwmark", "replace_peers", "endpoint", "persistent_keepalive_interval",
    "replace_allowed_ips", "allowed_ip", "protocol_version", "remove", "update_only", "name", "get", "set", "", "__proto__", "errno"],
  values: ["", "0", "1", "2", "true", "false", "65535", "65536", "-1", "4294967295", "4294967296", "99999999999999999999", "0x10",
    h(PUB[0]), h(PRIV[1]), "0".repeat(64), "f".repeat(64), "0".repeat(63), "g".repeat(64), `${h(PUB[0])}00`,
    "10.0.0.0/8", "10.0.0.1/33", "::/0", "-::/0", "fe80::1/64", "1.2.3.4", "192.0.2.1:0", "[::1]:51820", "[::1", "host:1", "0.0.0.0:1",
    "client-A", "x".repeat(101), "é", "\x1b", "\r", "=", "a=b"],
  lines: ["public_key=" + h(PUB[0]), "name=client-C", "remove=true", "", "=", "x", "allowed_ip=10.1.0.0/16", "replace_peers=true", "errno=0"],
};

export interface SetInput {
  mode: ConfigMode;
  body: string;
}

export const uapiSetTarget: Target<SetInput> = {
  name: "uapi-set",
  about: "parseSetRequest(mutated set=1 bodies, both dialects) -> DeviceChange or ControlError",
  generate(rng) {
    const mode: ConfigMode = rng.chance(0.6) ? "wireguard" : "wontun";
    const seeds = rng.chance(0.8) ? (mode === "wireguard" ? WG_BODIES : WONTUN_BODIES) : [...WG_BODIES, ...WONTUN_BODIES];
    return { mode, body: mutateText(rng, rng.pick(seeds), SET_DICT) };
  },
  check({ mode, body }) {
    let change: DeviceChange;
    try {
      change = parseSetRequest(body, mode);
    } catch (err) {
      invariant(err instanceof ControlError, "only ControlError may be thrown", () => `${(err as Error)?.constructor?.name}: ${(err as Error)?.message}`);
      invariant(Number.isInteger(err.errno) && err.errno > 0, "a ControlError carries a positive errno", () => String(err.errno));
      return;
    }
    invariant(Array.isArray(change.peers) && typeof change.replacePeers === "boolean", "a DeviceChange has its shape");
    if (change.listenPort !== undefined) invariant(Number.isInteger(change.listenPort) && change.listenPort >= 0 && change.listenPort <= 65535, "listen_port within 0-65535", () => String(change.listenPort));
    if (change.fwmark !== undefined) invariant(Number.isInteger(change.fwmark) && change.fwmark >= 0 && change.fwmark <= 0xffffffff, "fwmark within 32 bits", () => String(change.fwmark));
    for (const p of change.peers) {
      if (mode === "wireguard") invariant(p.publicKey?.length === 32, "a WireGuard peer has a 32-byte key");
      else invariant(p.publicKey === null && p.name !== "", "a wontun peer has a name and no key");
      if (p.persistentKeepalive !== undefined) invariant(Number.isInteger(p.persistentKeepalive) && p.persistentKeepalive >= 0 && p.persistentKeepalive <= 65535, "keepalive within 0-65535", () => String(p.persistentKeepalive));
      for (const c of [...p.allowedIps, ...(p.removeAllowedIps ?? [])]) {
        invariant((c.address.length === 4 && c.prefix <= 32) || (c.address.length === 16 && c.prefix <= 128), "allowed IPs are valid prefixes", () => `${c.address.length}/${c.prefix}`);
      }
    }
  },
  *shrink(input) {
    for (const body of shrinkString(input.body)) yield { ...input, body };
  },
  show: (input) => `mode=${input.mode} body=${showText(input.body)}`,
};

// ---- status answers ---------------------------------------------------------------------------

function randomName(rng: Rng, max: number): string {
  const chars = ["a", "b", "-", "_", ".", "0", "é", " ", "=", "\n", "\\", "\x1b", "\u2028", "#"];
  let s = "";
  const n = rng.int(max + 1);
  for (let i = 0; i < n; i++) s += rng.chance(0.8) ? "client"[i % 6] : rng.pick(chars);
  return s;
}

function randomCidr(rng: Rng) {
  const v6 = rng.chance(0.4);
  const address = rng.bytes(v6 ? 16 : 4);
  const prefix = rng.int((v6 ? 128 : 32) + 1);
  // Host bits cleared, as every stored prefix has them.
  for (let bit = prefix; bit < address.length * 8; bit++) address[bit >> 3] &= ~(0x80 >> (bit & 7));
  return { address, prefix };
}

function randomStatus(rng: Rng): DeviceStatus {
  const mode: ConfigMode = rng.chance(0.5) ? "wireguard" : "wontun";
  const wg = mode === "wireguard";
  const peers: PeerStatus[] = [];
  const n = rng.int(4);
  for (let i = 0; i < n; i++) {
    peers.push({
      id: rng.int(1000),
      name: wg ? (rng.chance(0.5) ? "" : randomName(rng, 20)) : randomName(rng, 20) || "p",
      publicKey: wg ? rng.bytes(32) : null,
      presharedKey: wg && rng.chance(0.5) ? rng.bytes(32) : null,
      endpoint: rng.chance(0.6) ? { address: rng.bytes(rng.chance(0.5) ? 4 : 16), port: rng.int(65536) } : null,
      persistentKeepalive: rng.int(65536),
      allowedIps: Array.from({ length: rng.int(4) }, () => randomCidr(rng)),
      lastHandshake: rng.chance(0.5) ? { sec: 0, nsec: 0 } : { sec: rng.int(2_000_000_000), nsec: rng.int(1_000_000_000) },
      rxBytes: rng.chance(0.5) ? rng.int(1 << 30) : rng.int(2 ** 52),
      txBytes: rng.int(1 << 30),
      state: rng.pick(wg ? ["up", "handshaking", "no session"] : ["Connected", "HandshakeSent", "Idle"]),
    });
  }
  const privateKey = wg && rng.chance(0.7) ? rng.bytes(32) : null;
  return {
    mode,
    interfaceName: rng.pick(["wg0", "tun0", "m1", "x"]),
    privateKey,
    publicKey: privateKey ? rng.bytes(32) : null,
    name: wg ? "" : randomName(rng, 20) || "server",
    listenPort: rng.int(65536),
    fwmark: rng.chance(0.5) ? 0 : rng.u32(),
    peers,
    drops: Object.fromEntries(Array.from({ length: rng.int(4) }, (_, i) => [rng.pick(["malformed", "unknownIndex", "badMac1", "replay", "notIp"]) + (i ? i : ""), rng.int(1 << 30)])),
  };
}

export interface StatusInput {
  status: DeviceStatus;
  /** Edits to the formatted answer (none: the round trip itself is checked). */
  mutatedText: string | null;
}

export const uapiStatusTarget: Target<StatusInput> = {
  name: "uapi-status",
  about: "formatStatusResponse -> parseStatusResponse -> formatStatusResponse is the same text; mutated answers -> status or ControlError",
  generate(rng) {
    const status = randomStatus(rng);
    if (rng.chance(0.5)) return { status, mutatedText: null };
    const text = formatStatusResponse(status);
    const dict: TextDictionary = { keys: ["mode", "interface", "listen_port", "fwmark", "public_key", "name", "id", "endpoint", "allowed_ip", "errno", "drop_x", "tx_bytes", "last_handshake_time_sec"], values: SET_DICT.values.concat(["wireguard", "wontun", "-5", "1e3", "NaN"]), lines: ["errno=0", "errno=-22", "", "mode=wontun", "public_key=" + h(PUB[0]), "name=z", "x"] };
    return { status, mutatedText: mutateText(rng, text, dict) };
  },
  check({ status, mutatedText }) {
    if (mutatedText === null) {
      const text = formatStatusResponse(status);
      const parsed = parseStatusResponse(text);
      const again = formatStatusResponse(parsed);
      invariant(again === text, "format -> parse -> format gives the same answer", () => `\n--- first:\n${text}--- second:\n${again}`);
      return;
    }
    try {
      parseStatusResponse(mutatedText);
    } catch (err) {
      invariant(err instanceof ControlError, "only ControlError may be thrown", () => `${(err as Error)?.constructor?.name}: ${(err as Error)?.message}`);
    }
  },
  *shrink(input) {
    if (input.mutatedText !== null) {
      for (const mutatedText of shrinkString(input.mutatedText)) yield { ...input, mutatedText };
      return;
    }
    const s = input.status;
    for (const peers of shrinkArray(s.peers)) yield { ...input, status: { ...s, peers } };
    if (Object.keys(s.drops).length > 0) yield { ...input, status: { ...s, drops: {} } };
    for (let i = 0; i < s.peers.length; i++) {
      const p = s.peers[i];
      const simpler: PeerStatus[] = [
        { ...p, allowedIps: [] }, { ...p, endpoint: null }, { ...p, name: s.mode === "wireguard" ? "" : "p" }, { ...p, presharedKey: null },
        ...p.allowedIps.map((_, k) => ({ ...p, allowedIps: p.allowedIps.filter((__, j) => j !== k) })),
      ];
      for (const q of simpler) if (canonical(q) !== canonical(p)) yield { ...input, status: { ...s, peers: s.peers.map((x, j) => (j === i ? q : x)) } };
    }
  },
  show: (input) => (input.mutatedText !== null ? `text=${showText(input.mutatedText)}` : `status=${canonical(input.status)}\nformatted=${showText(formatStatusResponse(input.status))}`),
};

// ---- Operations.apply -----------------------------------------------------------------------

const quiet: Logger = { traceOn: false, debugOn: false, error() {}, warn() {}, info() {}, debug() {}, trace() {} };
const aead = selectAeadBackend();

function device(mode: ConfigMode) {
  const clock = () => 0;
  const protocol = mode === "wireguard"
    ? new WireGuardProtocol({ privateKey: PRIV[0], aead, mtu: 1420, random: ((r) => (n: number) => r.bytes(n))(new Rng(3)), wallClock: () => 1_700_000_000_000 })
    : new WontunProtocol("server", [], () => 0.5, () => 1_700_000_000_000);
  const bind = new MemoryBind({ network: new MemoryNetwork(1), address: new Uint8Array([192, 0, 2, 1]) });
  const dev = new Device({ tun: new MemoryTun("m1"), bind, protocol, log: quiet, listenPort: mode === "wireguard" ? 51820 : 19988, clock });
  dev.start();
  const ops = new Operations({ device: dev, protocol, mode, interfaceName: "m1", name: mode === "wontun" ? "server" : undefined, now: clock });
  return { ops, close: () => dev.close() };
}

const CIDRS = ["10.0.0.0/8", "10.1.0.0/16", "10.1.2.3/32", "0.0.0.0/0", "::/0", "fd00::/64", "fd00::1/128"].map((t) => {
  const [a, p] = t.split("/");
  const address = a.includes(":") ? (() => { const out = new Uint8Array(16); if (a.startsWith("fd00")) { out[0] = 0xfd; } if (a.endsWith("::1")) out[15] = 1; return out; })() : new Uint8Array(a.split(".").map(Number));
  return { address, prefix: Number(p) };
});

function randomPeerChange(rng: Rng, mode: ConfigMode): PeerChange {
  const wg = mode === "wireguard";
  const keys = [PUB[1], PUB[2], PUB[0], new Uint8Array(32), new Uint8Array(31), publicKeyOf(key(9))];
  const p: PeerChange = {
    publicKey: wg ? rng.pick(keys) : null,
    name: wg ? (rng.chance(0.8) ? "" : rng.pick(["lbl", "x".repeat(101)])) : rng.pick(["client-A", "client-B", "server", "", "x".repeat(101), "é"]),
    remove: rng.chance(0.15),
    updateOnly: rng.chance(0.15),
    replaceAllowedIps: rng.chance(0.3),
    allowedIps: Array.from({ length: rng.int(3) }, () => (rng.chance(0.9) ? rng.pick(CIDRS) : randomCidr(rng))),
  };
  if (rng.chance(0.3)) p.removeAllowedIps = [rng.pick(CIDRS)];
  if (wg && rng.chance(0.3)) p.presharedKey = rng.chance(0.3) ? null : rng.bytes(rng.chance(0.9) ? 32 : 16);
  if (rng.chance(0.4)) p.endpoint = { address: rng.bytes(rng.pick([4, 16])), port: rng.chance(0.9) ? rng.int(65536) : rng.pick([-1, 65536, 1.5]) };
  if (rng.chance(0.4)) p.persistentKeepalive = rng.chance(0.9) ? rng.int(65536) : rng.pick([-1, 65536, 70000, 0.5]);
  return p;
}

function randomChange(rng: Rng, mode: ConfigMode): DeviceChange {
  const c: DeviceChange = { replacePeers: rng.chance(0.15), peers: Array.from({ length: rng.int(4) }, () => randomPeerChange(rng, mode)) };
  if (mode === "wireguard" && rng.chance(0.15)) c.privateKey = rng.chance(0.3) ? null : rng.pick([PRIV[0], PRIV[1], PRIV[2], new Uint8Array(31)]);
  if (rng.chance(0.15)) c.listenPort = rng.chance(0.9) ? rng.pick([51820, 19988, 0, 40000]) : rng.pick([-1, 65536, 1.5]);
  if (rng.chance(0.15)) c.fwmark = rng.chance(0.9) ? rng.pick([0, 1, 0xffffffff]) : rng.pick([-1, 2 ** 32, 0.5]);
  return c;
}

export interface OpsInput {
  mode: ConfigMode;
  changes: DeviceChange[];
}

function snapshot(ops: Operations): string {
  return canonical(ops.status());
}

export const operationsTarget: Target<OpsInput> = {
  name: "operations",
  about: "Operations.apply(random DeviceChanges) on an in-memory Device -> success, or ControlError with status() unchanged",
  generate(rng) {
    const mode: ConfigMode = rng.chance(0.6) ? "wireguard" : "wontun";
    return { mode, changes: Array.from({ length: 1 + rng.int(6) }, () => randomChange(rng, mode)) };
  },
  check({ mode, changes }) {
    const { ops, close } = device(mode);
    try {
      applyAll(ops, changes);
    } finally {
      close(); // its epoll fd: a long run made 20,000 devices
    }
  },
  *shrink(input) {
    for (const changes of shrinkArray(input.changes, (c) => (function* () {
      for (const peers of shrinkArray(c.peers)) yield { ...c, peers };
    })())) yield { ...input, changes };
  },
  show: (input) => `mode=${input.mode} changes=${canonical(input.changes)}`,
};

function applyAll(ops: Operations, changes: DeviceChange[]): void {
  for (const change of changes) {
    const before = snapshot(ops);
    try {
      ops.apply(change);
    } catch (err) {
      invariant(err instanceof ControlError, "only ControlError may be thrown", () => `${(err as Error)?.constructor?.name}: ${(err as Error)?.message}`);
      const after = snapshot(ops);
      invariant(after === before, "a refused change changes nothing", () => `${err.message}\n  before: ${before}\n  after:  ${after}`);
      continue;
    }
    // Every prefix belongs to one peer at most.
    const seen = new Set<string>();
    for (const p of ops.status().peers) {
      for (const c of p.allowedIps) {
        const k = `${hex(c.address)}/${c.prefix}`;
        invariant(!seen.has(k), "a prefix belongs to one peer at most", () => k);
        seen.add(k);
      }
    }
  }
}
