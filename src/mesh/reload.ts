// A reload (SIGHUP, `wontun reload`) of a config with [Mesh]: the file's static peers are replaced
// as usual, but the mesh's members, which are not in the file, stay (with their sessions), and
// the mesh address the store gave this node stays on the interface.
import { encodeKey } from "../crypto/keys.ts";
import { cidrContains, ipEquals } from "../net/ip.ts";
import type { Config } from "../config/model.ts";
import type { DeviceChange } from "../control/model.ts";

export function meshReloadChange(old: Config, next: Config, change: DeviceChange): DeviceChange {
  const mesh = old.mesh;
  if (!mesh) return change;
  // Keep the allocated address (the file has none, or another one inside the network).
  for (const a of old.interface.addresses) {
    if (a.address.length === mesh.network.address.length && cidrContains(mesh.network, a.address) && !next.interface.addresses.some((b) => ipEquals(a.address, b.address))) {
      next.interface.addresses = [a, ...next.interface.addresses.filter((b) => !(b.address.length === a.address.length && cidrContains(mesh.network, b.address)))];
    }
  }
  const key = (p: { publicKey: Uint8Array | null; name: string }) => (p.publicKey ? encodeKey(p.publicKey) : p.name);
  const kept = new Set(next.peers.map(key));
  const removed = old.peers.filter((p) => !kept.has(key(p)));
  return {
    ...change,
    replacePeers: false,
    peers: [...change.peers, ...removed.map((p) => ({ publicKey: p.publicKey, name: p.name, remove: true, updateOnly: false, replaceAllowedIps: false, allowedIps: [] }))],
  };
}
