// Which address a node tries to take from the mesh's network: a start derived from its public key
// (so nodes joining at once rarely try the same one), then onwards, skipping addresses already
// held. The store's transaction decides; this only proposes.
import { type Cidr } from "../net/ip.ts";
import { isHostAddress } from "./record.ts";

/** The address at offset `n` (a host number) inside `network`. */
export function addressAt(network: Cidr, n: bigint): Uint8Array {
  const out = new Uint8Array(network.address);
  let value = n;
  for (let i = out.length - 1; i >= 0 && value > 0n; i--) {
    out[i] |= Number(value & 0xffn);
    value >>= 8n;
  }
  return out;
}

/** Host addresses of `network` to try, starting from one derived from `seed`, never one in `taken`. */
export function* candidateAddresses(network: Cidr, seed: Uint8Array, taken: ReadonlySet<string>, format: (a: Uint8Array) => string): Generator<Uint8Array> {
  const hostBits = BigInt(network.address.length * 8 - network.prefix);
  const size = 1n << hostBits;
  // Large IPv6 networks: stay within the first 2^32 hosts, which no mesh exhausts.
  const span = size > 1n << 32n ? 1n << 32n : size;
  let start = 0n;
  for (let i = 0; i < 8 && i < seed.length; i++) start = (start << 8n) | BigInt(seed[i]);
  start %= span;
  for (let i = 0n; i < span; i++) {
    const address = addressAt(network, (start + i) % span);
    if (!isHostAddress(network, address)) continue;
    if (taken.has(format(address))) continue;
    yield address;
  }
}
