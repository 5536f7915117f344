// Named hosts running the WireGuard protocol, each a real Device on MemoryBind/MemoryTun over one
// MemoryNetwork with a fake clock, latency and seeded loss (the core is in wontun-sim.ts). The
// Device dispatches every Outcome; send() and receive() only report what the protocol answered.
import { Outcome } from "../../src/protocol/tunnel.ts";
import { WireGuardProtocol } from "../../src/protocol/wireguard/protocol.ts";
import { selectAeadBackend } from "../../src/crypto/aead.ts";
import { publicKeyOf } from "../../src/crypto/keys.ts";
import { DeviceSimHost, DeviceSimNet, seededRandom } from "./wontun-sim.ts";

export { ipv4Packet } from "./wontun-sim.ts";

const aead = selectAeadBackend();

export function seededBytes(seed: number): (n: number) => Uint8Array {
  const r = seededRandom(seed);
  return (n) => {
    const out = new Uint8Array(n);
    for (let i = 0; i < n; i++) out[i] = Math.floor(r() * 256);
    return out;
  };
}

export function keyFrom(seed: number): Uint8Array {
  const k = seededBytes(seed)(32);
  k[0] &= 248;
  k[31] = (k[31] & 127) | 64;
  return k;
}

export interface WgSimPeer {
  host: string;
  endpoint: boolean;
  keepalive?: number;
  psk?: Uint8Array;
}

export class WgSimHost extends DeviceSimHost<WireGuardProtocol> {
  constructor(
    net: WgSimNet,
    name: string,
    readonly privateKey: Uint8Array,
    readonly peers: WgSimPeer[],
    readonly peerKeys: Uint8Array[],
  ) {
    super(
      net,
      name,
      peers.map((p) => ({ name: p.host, endpoint: p.endpoint })),
    );
    this.boot();
  }

  get publicKey(): Uint8Array {
    return publicKeyOf(this.privateKey);
  }

  protected makeProtocol(): WireGuardProtocol {
    return new WireGuardProtocol({
      privateKey: this.privateKey,
      peers: this.peers.map((p, i) => ({ id: i, publicKey: this.peerKeys[i], presharedKey: p.psk ?? null, persistentKeepaliveSeconds: p.keepalive ?? 0 })),
      aead,
      mtu: 1420,
      random: seededBytes(this.name.length * 131 + this.net.now + 1),
      wallClock: () => 1_700_000_000_000 + this.net.now,
    });
  }

  /** Sends an IPv4 packet carrying `text` to peer `peer`: Send, Hold (the device holds it) or Drop. */
  send(peer: number, text: string): Outcome {
    return this.sendPacket(peer, new TextEncoder().encode(text));
  }
}

export class WgSimNet extends DeviceSimNet<WgSimHost> {
  add(name: string, privateKey: Uint8Array, peers: WgSimPeer[], peerKeys: Uint8Array[]): WgSimHost {
    return this.register(new WgSimHost(this, name, privateKey, peers, peerKeys));
  }
}

/** Two hosts that know each other: "a" has b's endpoint, "b" learns a's. */
export function wgPair(opts: { seed?: number; psk?: Uint8Array; keepalive?: number; bothEndpoints?: boolean } = {}) {
  const net = new WgSimNet(opts.seed ?? 1);
  const ka = keyFrom(101);
  const kb = keyFrom(202);
  const a = net.add("a", ka, [{ host: "b", endpoint: true, psk: opts.psk, keepalive: opts.keepalive }], [publicKeyOf(kb)]);
  const b = net.add("b", kb, [{ host: "a", endpoint: opts.bothEndpoints ?? false, psk: opts.psk }], [publicKeyOf(ka)]);
  return { net, a, b };
}
