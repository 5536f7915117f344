// DeviceStatus -> the text answers of `get=1` and `get=wontun`, and `get=wontun`'s answer back to a
// DeviceStatus (for `wontun show`).
//
// get=1, WireGuard mode: byte for byte what wireguard-go answers (device/uapi.go IpcGetOperation):
//   private_key (only if set)  listen_port (only if nonzero)  fwmark (only if nonzero)
//   per peer: public_key preshared_key (zeros = none) protocol_version=1 endpoint (only if known)
//             last_handshake_time_sec last_handshake_time_nsec tx_bytes rx_bytes
//             persistent_keepalive_interval allowed_ip (one line each)
//   errno=0 and a blank line.
// No extra keys: `wg` ignores keys it does not know, but other UAPI clients may not.
//
// get=1, wontun mode (no keys; a peer section starts with name=):
//   own_name (the host's handshake name)  listen_port (if nonzero)  fwmark (if nonzero)
//   per peer: name endpoint (if known) state last_handshake_time_sec last_handshake_time_nsec
//             tx_bytes rx_bytes persistent_keepalive_interval allowed_ip…
//   errno=0
//
// get=wontun (both modes; a wontun extension wireguard-go does not know and would hang up on):
//   mode interface own_name (if set) private_key (if set) own_public_key (if set) listen_port
//   fwmark drop_<reason>… (every counter the device reports)
//   per peer: public_key (WireGuard) or name (wontun) starting the section, id, name (WireGuard
//             label, if set), preshared_key and protocol_version (WireGuard), endpoint (if known),
//             state, last_handshake_time_sec, last_handshake_time_nsec, tx_bytes, rx_bytes,
//             persistent_keepalive_interval, allowed_ip…
//   errno=0
import { formatCidr, parseCidr, type Cidr } from "../net/ip.ts";
import { formatEndpoint, parseEndpoint } from "../net/endpoint.ts";
import type { ConfigMode } from "../config/model.ts";
import { ControlError, UAPI_EPROTO, blankPeerStatus, type DeviceStatus, type MeshStatus, type PeerStatus } from "./model.ts";
import { ZERO_KEY_HEX, errnoLine, isZeroKey, keyFromHex, keyToHex } from "./uapi-values.ts";

/** The answer to `get=1`, ending with "errno=0\n\n". */
export function formatGetResponse(status: DeviceStatus): string {
  const out: string[] = [];
  const wireguard = status.mode === "wireguard";
  if (wireguard) {
    if (status.privateKey && !isZeroKey(status.privateKey)) out.push(`private_key=${keyToHex(status.privateKey)}`);
  } else if (status.name !== "") {
    out.push(`own_name=${oneLine(status.name)}`);
  }
  if (status.listenPort !== 0) out.push(`listen_port=${status.listenPort}`);
  if (status.fwmark !== 0) out.push(`fwmark=${status.fwmark}`);
  for (const peer of status.peers) {
    if (wireguard) {
      out.push(`public_key=${peerKeyHex(peer)}`);
      out.push(`preshared_key=${peer.presharedKey ? keyToHex(peer.presharedKey) : ZERO_KEY_HEX}`);
      out.push("protocol_version=1");
    } else {
      out.push(`name=${oneLine(peer.name)}`);
    }
    if (peer.endpoint) out.push(`endpoint=${formatEndpoint(peer.endpoint)}`);
    if (!wireguard) out.push(`state=${oneLine(peer.state)}`);
    pushCounters(out, peer);
  }
  return out.map((l) => l + "\n").join("") + errnoLine(0);
}

/** The answer to `get=wontun`, ending with "errno=0\n\n". */
export function formatStatusResponse(status: DeviceStatus): string {
  const out: string[] = [`mode=${status.mode}`, `interface=${oneLine(status.interfaceName)}`];
  const wireguard = status.mode === "wireguard";
  if (status.name !== "") out.push(`own_name=${oneLine(status.name)}`);
  if (status.privateKey) out.push(`private_key=${keyToHex(status.privateKey)}`);
  if (status.publicKey) out.push(`own_public_key=${keyToHex(status.publicKey)}`);
  out.push(`listen_port=${status.listenPort}`, `fwmark=${status.fwmark}`);
  for (const [reason, count] of Object.entries(status.drops)) out.push(`drop_${dropKey(reason)}=${count}`);
  if (status.mesh) pushMesh(out, status.mesh);
  for (const bytes of status.threads ?? []) out.push(`thread_bytes=${bytes}`);
  for (const peer of status.peers) {
    if (wireguard) {
      out.push(`public_key=${peerKeyHex(peer)}`, `id=${peer.id}`);
      if (peer.name !== "") out.push(`name=${oneLine(peer.name)}`);
      out.push(`preshared_key=${peer.presharedKey ? keyToHex(peer.presharedKey) : ZERO_KEY_HEX}`, "protocol_version=1");
    } else {
      out.push(`name=${oneLine(peer.name)}`, `id=${peer.id}`);
    }
    if (peer.endpoint) out.push(`endpoint=${formatEndpoint(peer.endpoint)}`);
    out.push(`state=${oneLine(peer.state)}`);
    pushCounters(out, peer);
  }
  return out.map((l) => l + "\n").join("") + errnoLine(0);
}

/** [Mesh] lines: mesh_store…, then each member from mesh_member=KEY on (before any peer section). */
function pushMesh(out: string[], mesh: MeshStatus): void {
  out.push(`mesh_store=${oneLine(mesh.store)}`, `mesh_store_state=${mesh.storeState}`);
  if (mesh.storeError !== "") out.push(`mesh_store_error=${oneLine(mesh.storeError)}`);
  out.push(`mesh_revision=${mesh.revision}`, `mesh_address=${oneLine(mesh.address)}`, `mesh_published=${mesh.published}`);
  for (const m of mesh.members) {
    out.push(`mesh_member=${oneLine(m.key)}`, `mesh_member_name=${oneLine(m.name)}`, `mesh_member_address=${oneLine(m.address)}`,
      `mesh_member_endpoint=${oneLine(m.endpoint)}`, `mesh_member_state=${oneLine(m.state)}`);
  }
}

function pushCounters(out: string[], peer: PeerStatus): void {
  out.push(
    `last_handshake_time_sec=${peer.lastHandshake.sec}`,
    `last_handshake_time_nsec=${peer.lastHandshake.nsec}`,
    `tx_bytes=${peer.txBytes}`,
    `rx_bytes=${peer.rxBytes}`,
    `persistent_keepalive_interval=${peer.persistentKeepalive}`,
  );
  for (const cidr of peer.allowedIps) out.push(`allowed_ip=${formatCidr(cidr)}`);
}

function peerKeyHex(peer: PeerStatus): string {
  return peer.publicKey ? keyToHex(peer.publicKey) : ZERO_KEY_HEX;
}

// Names are validated by the config (no control characters); a newline would still end the line
// early and corrupt the rest of the answer, so it never reaches the wire.
function oneLine(text: string): string {
  return text.replace(/[\u0000-\u001f\u007f]/g, "?");
}

/** Drop reasons become key suffixes: lowercase letters, digits and "_" only. */
function dropKey(reason: string): string {
  return reason.toLowerCase().replace(/[^a-z0-9_]/g, "_");
}

/**
 * Parses a `get=wontun` answer (as formatStatusResponse writes it) into a DeviceStatus. Keys it
 * does not know are skipped, so an older `wontun show` reads a newer daemon's answer; anything
 * malformed throws ControlError(EPROTO) naming the line. An answer with a nonzero errno throws
 * ControlError with that errno (positive).
 */
export function parseStatusResponse(text: string): DeviceStatus {
  if (!text.endsWith("\n\n")) throw malformed("the answer is truncated (no blank line at its end)");
  const lines = text.slice(0, -2).split("\n");
  const last = lines.pop()!;
  const errnoMatch = /^errno=(-?\d{1,10})$/.exec(last);
  if (!errnoMatch) throw malformed(`the answer does not end with errno=N (last line: "${clip(last)}")`);
  const errno = Math.abs(Number(errnoMatch[1]));
  if (errno !== 0) throw new ControlError(errno, `the daemon answered errno=${errnoMatch[1]}`);

  const status: DeviceStatus = {
    mode: "wontun",
    interfaceName: "",
    privateKey: null,
    publicKey: null,
    name: "",
    listenPort: 0,
    fwmark: 0,
    peers: [],
    drops: {},
  };
  let sawInterface = false;
  let peer: PeerStatus | null = null;
  lines.forEach((line, index) => {
    const where = `line ${index + 1}`;
    const eq = line.indexOf("=");
    if (eq < 0) throw malformed(`${where}: "${clip(line)}" is not key=value`);
    const key = line.slice(0, eq);
    const value = line.slice(eq + 1);
    if (index === 0) {
      if (key !== "mode" || (value !== "wireguard" && value !== "wontun")) {
        throw malformed(`${where}: expected mode=wireguard or mode=wontun, got "${clip(line)}"`);
      }
      status.mode = value;
      return;
    }
    const sectionKey = status.mode === "wireguard" ? "public_key" : "name";
    if (key === sectionKey) {
      peer = blankPeerStatus(status.peers.length);
      if (status.mode === "wireguard") peer.publicKey = key32(value, where, key);
      else peer.name = value;
      status.peers.push(peer);
      return;
    }
    if (peer !== null) {
      readPeerLine(peer, status.mode, key, value, where);
      return;
    }
    readInterfaceLine(status, key, value, where);
    if (key === "interface") sawInterface = true;
  });
  if (lines.length === 0) throw malformed("the answer is empty");
  if (!sawInterface) throw malformed("the answer has no interface= line");
  return status;
}

function readInterfaceLine(status: DeviceStatus, key: string, value: string, where: string): void {
  if (key.startsWith("drop_") && key.length > 5) {
    status.drops[key.slice(5)] = counter(value, where, key);
    return;
  }
  if (key.startsWith("mesh_")) {
    readMeshLine(status, key, value, where);
    return;
  }
  switch (key) {
    case "interface": status.interfaceName = value; break;
    case "own_name": status.name = value; break;
    case "private_key": status.privateKey = key32(value, where, key); break;
    case "own_public_key": status.publicKey = key32(value, where, key); break;
    case "listen_port": status.listenPort = bounded(value, 0xffff, where, key); break;
    case "fwmark": status.fwmark = bounded(value, 0xffffffff, where, key); break;
    case "thread_bytes": (status.threads ??= []).push(counter(value, where, key)); break;
    default: break; // a newer daemon's key
  }
}

function readMeshLine(status: DeviceStatus, key: string, value: string, where: string): void {
  const mesh: MeshStatus = (status.mesh ??= { store: "", storeState: "connecting", storeError: "", revision: 0, address: "", published: false, members: [] });
  const member = mesh.members[mesh.members.length - 1];
  switch (key) {
    case "mesh_store": mesh.store = value; break;
    case "mesh_store_state":
      if (value !== "connecting" && value !== "connected" && value !== "unreachable") throw malformed(`${where}: ${key}: "${clip(value)}"`);
      mesh.storeState = value;
      break;
    case "mesh_store_error": mesh.storeError = value; break;
    case "mesh_revision": mesh.revision = counter(value, where, key); break;
    case "mesh_address": mesh.address = value; break;
    case "mesh_published": mesh.published = value === "true"; break;
    case "mesh_member": mesh.members.push({ name: "", key: value, address: "", endpoint: "", state: "" }); break;
    default:
      if (!member) break;
      if (key === "mesh_member_name") member.name = value;
      else if (key === "mesh_member_address") member.address = value;
      else if (key === "mesh_member_endpoint") member.endpoint = value;
      else if (key === "mesh_member_state") member.state = value;
  }
}

function readPeerLine(peer: PeerStatus, mode: ConfigMode, key: string, value: string, where: string): void {
  switch (key) {
    case "id": peer.id = counter(value, where, key); break;
    case "name": peer.name = value; break; // a WireGuard peer's label
    case "preshared_key": {
      const k = key32(value, where, key);
      peer.presharedKey = isZeroKey(k) ? null : k;
      break;
    }
    case "endpoint": {
      // A learnt endpoint is the address a datagram came from, port 0 included (a datagram can
      // claim it, and a wontun-mode peer is learnt from any handshake); only set requests must
      // name a port 1-65535. Refusing it made one such datagram break `wontun show`.
      const zero = /:0$/.test(value);
      const ep = parseEndpoint(zero ? `${value.slice(0, -1)}1` : value);
      if (typeof ep === "string") throw malformed(`${where}: endpoint: ${ep}`);
      peer.endpoint = zero ? { address: ep.address, port: 0 } : ep;
      break;
    }
    case "state": peer.state = value; break;
    case "last_handshake_time_sec": peer.lastHandshake.sec = counter(value, where, key); break;
    case "last_handshake_time_nsec": peer.lastHandshake.nsec = bounded(value, 999_999_999, where, key); break;
    case "tx_bytes": peer.txBytes = counter(value, where, key); break;
    case "rx_bytes": peer.rxBytes = counter(value, where, key); break;
    case "persistent_keepalive_interval": peer.persistentKeepalive = bounded(value, 0xffff, where, key); break;
    case "allowed_ip": peer.allowedIps.push(cidr(value, where)); break;
    case "protocol_version":
      if (mode === "wireguard" && value !== "1") throw malformed(`${where}: protocol_version=${clip(value)}`);
      break;
    default: break; // a newer daemon's key
  }
}

function key32(value: string, where: string, key: string): Uint8Array {
  try {
    return keyFromHex(value, key);
  } catch (e) {
    throw malformed(`${where}: ${(e as Error).message}`);
  }
}

function counter(value: string, where: string, key: string): number {
  return bounded(value, Number.MAX_SAFE_INTEGER, where, key);
}

function bounded(value: string, max: number, where: string, key: string): number {
  if (!/^\d{1,16}$/.test(value) || Number(value) > max) {
    throw malformed(`${where}: ${key}: "${clip(value)}" is not a number in 0-${max}`);
  }
  return Number(value);
}

function cidr(value: string, where: string): Cidr {
  const parsed = value.includes("/") ? parseCidr(value) : `"${value}" has no /prefix length`;
  if (typeof parsed === "string") throw malformed(`${where}: allowed_ip: ${parsed}`);
  return parsed;
}

function clip(text: string): string {
  return text.length > 60 ? `${text.slice(0, 60)}…` : text;
}

function malformed(message: string): ControlError {
  return new ControlError(UAPI_EPROTO, `malformed status answer: ${message}`);
}
