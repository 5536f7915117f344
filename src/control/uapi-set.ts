// The body of a UAPI `set=1` request -> DeviceChange. Everything is validated here, before any of
// it is applied, so the device can apply a change whole or not at all (wireguard-go applies line
// by line and may stop half-way; the errno answered for a bad line is the same).
//
// WireGuard dialect (https://www.wireguard.com/xplatform/, wireguard-go device/uapi.go):
//   interface keys  private_key listen_port fwmark replace_peers
//   public_key=HEX  starts a peer section; interface keys after it are errors
//   peer keys       remove update_only preshared_key endpoint persistent_keepalive_interval
//                   replace_allowed_ips allowed_ip protocol_version
//
// wontun dialect (the plaintext protocol has no keys; peers are named):
//   interface keys  listen_port fwmark replace_peers
//   name=NAME       starts a peer section (instead of public_key=)
//   peer keys       remove update_only endpoint persistent_keepalive_interval replace_allowed_ips
//                   allowed_ip
//   private_key, public_key, preshared_key and protocol_version are errors.
import { formatCidr, parseCidr } from "../net/ip.ts";
import { parseEndpoint } from "../net/endpoint.ts";
import type { ConfigMode } from "../config/model.ts";
import { ControlError, UAPI_EINVAL, UAPI_EPROTO, type DeviceChange, type PeerChange } from "./model.ts";
import { errnoLine, isZeroKey, keyFromHex, parseName, parseTrue, parseUnsigned } from "./uapi-values.ts";

const KEY_LINES = new Set(["private_key", "public_key", "preshared_key", "protocol_version"]);

/**
 * Parses the lines after `set=1` up to (not including) the blank line that ends the request; a
 * final "\n" is optional. Throws ControlError with the errno wireguard-go answers: EPROTO for a
 * line without "=" (or a blank line inside the body), EINVAL for everything else.
 */
export function parseSetRequest(body: string, mode: ConfigMode): DeviceChange {
  const change: DeviceChange = { replacePeers: false, peers: [] };
  if (body === "" || body === "\n") return change;
  const lines = (body.endsWith("\n") ? body.slice(0, -1) : body).split("\n");
  const peerKey = mode === "wireguard" ? "public_key" : "name";
  let peer: PeerChange | null = null;
  for (const line of lines) {
    if (line === "") throw new ControlError(UAPI_EPROTO, "blank line inside a set request");
    const eq = line.indexOf("=");
    if (eq < 0) throw new ControlError(UAPI_EPROTO, `failed to parse line "${line}"`);
    const key = line.slice(0, eq);
    const value = line.slice(eq + 1);
    if (mode === "wontun" && KEY_LINES.has(key)) {
      throw new ControlError(UAPI_EINVAL, `${key}: a wontun (plaintext) device has no keys`);
    }
    if (key === peerKey) {
      peer = newPeerChange(mode, value);
      change.peers.push(peer);
    } else if (peer === null) {
      applyDeviceLine(change, key, value);
    } else {
      applyPeerLine(peer, key, value);
    }
  }
  return change;
}

function newPeerChange(mode: ConfigMode, value: string): PeerChange {
  return {
    publicKey: mode === "wireguard" ? keyFromHex(value, "public_key") : null,
    name: mode === "wontun" ? parseName(value) : "",
    remove: false,
    updateOnly: false,
    replaceAllowedIps: false,
    allowedIps: [],
  };
}

function applyDeviceLine(change: DeviceChange, key: string, value: string): void {
  switch (key) {
    case "private_key": {
      const k = keyFromHex(value, "private_key");
      change.privateKey = isZeroKey(k) ? null : clamp(k);
      return;
    }
    case "listen_port":
      change.listenPort = parseUnsigned(value, 0xffff, "listen_port");
      return;
    case "fwmark":
      change.fwmark = parseUnsigned(value, 0xffffffff, "fwmark");
      return;
    case "replace_peers":
      change.replacePeers = parseTrue(value, "replace_peers");
      return;
    default:
      throw new ControlError(UAPI_EINVAL, `invalid UAPI device key: ${key}`);
  }
}

function applyPeerLine(peer: PeerChange, key: string, value: string): void {
  switch (key) {
    case "remove":
      peer.remove = parseTrue(value, "remove");
      return;
    case "update_only":
      peer.updateOnly = parseTrue(value, "update_only");
      return;
    case "preshared_key": {
      const k = keyFromHex(value, "preshared_key");
      peer.presharedKey = isZeroKey(k) ? null : k;
      return;
    }
    case "endpoint": {
      const ep = parseEndpoint(value);
      if (typeof ep === "string") throw new ControlError(UAPI_EINVAL, `failed to set endpoint ${value}: ${ep}`);
      peer.endpoint = ep;
      return;
    }
    case "persistent_keepalive_interval":
      peer.persistentKeepalive = parseUnsigned(value, 0xffff, "persistent_keepalive_interval");
      return;
    case "replace_allowed_ips":
      // wireguard-go clears the peer's AllowedIPs at this line: prefixes added before it go too.
      peer.replaceAllowedIps = parseTrue(value, "replace_allowed_ips");
      peer.allowedIps = [];
      return;
    case "allowed_ip": {
      // "-PREFIX" takes one prefix away (wireguard-go since 2025); lines apply in order.
      const removing = value.startsWith("-");
      const text = removing ? value.slice(1) : value;
      // netip.ParsePrefix needs the "/len"; a bare address is an error there too.
      if (!text.includes("/")) throw new ControlError(UAPI_EINVAL, `allowed_ip: "${value}" has no /prefix length`);
      const cidr = parseCidr(text);
      if (typeof cidr === "string") throw new ControlError(UAPI_EINVAL, `allowed_ip: ${cidr}`);
      const key = formatCidr(cidr);
      peer.allowedIps = peer.allowedIps.filter((c) => formatCidr(c) !== key);
      if (removing) (peer.removeAllowedIps ??= []).push(cidr);
      else {
        peer.removeAllowedIps = peer.removeAllowedIps?.filter((c) => formatCidr(c) !== key);
        peer.allowedIps.push(cidr);
      }
      return;
    }
    case "protocol_version":
      if (value !== "1") throw new ControlError(UAPI_EINVAL, `invalid protocol version: ${value}`);
      return;
    default:
      throw new ControlError(UAPI_EINVAL, `invalid UAPI peer key: ${key}`);
  }
}

/** X25519 clamping, as wireguard-go stores a private key (so `get` returns it clamped). */
function clamp(key: Uint8Array): Uint8Array {
  key[0] &= 248;
  key[31] = (key[31] & 127) | 64;
  return key;
}

/**
 * The whole answer to a `set=1`: parses `body`, hands the change to `apply` (which throws
 * ControlError to refuse it), and returns "errno=0\n\n" or the errno line of the failure. Other
 * exceptions are bugs and propagate (the control server answers them with ENOANO, as wireguard-go).
 */
export function answerSetRequest(body: string, mode: ConfigMode, apply: (change: DeviceChange) => void): string {
  try {
    apply(parseSetRequest(body, mode));
    return errnoLine(0);
  } catch (e) {
    if (e instanceof ControlError) return errnoLine(e.errno);
    throw e;
  }
}
