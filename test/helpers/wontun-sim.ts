// Named hosts, each a real Device on MemoryBind/MemoryTun, on one MemoryNetwork with a fake
// clock, latency and seeded loss: no sockets, no TUN, no root. The Device does all the work
// (routing by AllowedIPs, Outcome dispatch, held packets, endpoint learning, timers); these
// helpers only name the hosts, put text into their TUNs as IPv4 packets and read back what the
// devices wrote. SimNet/SimHost: the wontun protocol; wg-sim.ts: WireGuard, on the same core.
//
// Host n (in order of first mention) is 192.0.2.n:51820 on the network and 10.0.0.n in the tunnel.
// To observe Outcomes the host wraps its protocol's encapsulate/receive: send() and receive()
// report what the protocol answered, the device still acts on it.
import { Outcome, type ControlSink, type PeerId, type TunnelProtocol } from "../../src/protocol/tunnel.ts";
import { WontunProtocol } from "../../src/protocol/wontun/protocol.ts";
import { Device } from "../../src/device/device.ts";
import { MemoryBind, MemoryNetwork, seededRandom } from "../../src/device/bind-memory.ts";
import { MemoryTun } from "../../src/device/tun-memory.ts";
import { formatEndpoint, type Endpoint } from "../../src/net/endpoint.ts";
import { parseCidr, type Cidr } from "../../src/net/ip.ts";
import type { Logger } from "../../src/log.ts";

export { seededRandom };

const PORT = 51820;
const quiet: Logger = { traceOn: false, debugOn: false, error() {}, warn() {}, info() {}, debug() {}, trace() {} };

type Arrival = ReturnType<MemoryNetwork["take"]>;

/**
 * A MemoryNetwork whose inject() jumps the queue: an injected datagram is taken before any
 * other, even when datagrams still in flight (not yet due) are ahead of it in the inbox.
 */
class SimWire extends MemoryNetwork {
  private readonly injected = new Map<string, NonNullable<Arrival>[]>();

  override inject(from: Endpoint, to: Endpoint, bytes: Uint8Array): void {
    const key = formatEndpoint(to);
    let list = this.injected.get(key);
    if (list === undefined) this.injected.set(key, (list = []));
    list.push({ from, bytes: bytes.slice(), at: this.now });
  }

  override take(to: Endpoint): Arrival {
    const list = this.injected.get(formatEndpoint(to));
    if (list !== undefined && list.length > 0) return list.shift();
    return super.take(to);
  }

  override discardArrived(to: Endpoint): void {
    this.injected.delete(formatEndpoint(to));
    super.discardArrived(to);
  }

  override flush(): void {
    this.injected.clear();
    super.flush();
  }
}

/** An IPv4/UDP packet from `src` to `dst` whose payload is `body`. */
export function ipv4Packet(body: Uint8Array, src: number[] = [10, 0, 0, 1], dst: number[] = [10, 0, 0, 2]): Uint8Array {
  const p = new Uint8Array(20 + body.length);
  p[0] = 0x45;
  p[2] = p.length >> 8;
  p[3] = p.length & 0xff;
  p[8] = 64;
  p[9] = 17;
  p.set(src, 12);
  p.set(dst, 16);
  p.set(body, 20);
  return p;
}

/** The network of named hosts; `H` is the kind of host. */
export class DeviceSimNet<H extends DeviceSimHost<TunnelProtocol>> {
  readonly network: MemoryNetwork;
  /** Hosts up; datagrams to a name missing here vanish (a host that is down). */
  readonly hosts = new Map<string, H>();
  /** Sees every datagram put on the wire (before loss), by host name. */
  tap: ((from: string, to: string, bytes: Uint8Array) => void) | null = null;
  private readonly numbers = new Map<string, number>();
  private readonly names = new Map<string, string>();

  constructor(seed = 1) {
    this.network = new SimWire(seed);
    this.network.latency = 5;
    this.network.tap = (from, to, bytes) => this.tap?.(this.nameOf(from), this.nameOf(to), bytes);
  }

  get now(): number {
    return this.network.now;
  }
  set now(ms: number) {
    this.network.now = ms;
  }
  get loss(): number {
    return this.network.loss;
  }
  set loss(share: number) {
    this.network.loss = share;
  }
  get latency(): number {
    return this.network.latency;
  }
  set latency(ms: number) {
    this.network.latency = ms;
  }
  /** Datagrams put on the wire (before loss). */
  get sent(): number {
    return this.network.sent;
  }

  /** The host's number: 1, 2, ... in order of first mention. */
  numberOf(name: string): number {
    let n = this.numbers.get(name);
    if (n === undefined) {
      n = this.numbers.size + 1;
      this.numbers.set(name, n);
      this.names.set(formatEndpoint(this.endpointOf(name, n)), name);
    }
    return n;
  }

  endpointOf(name: string, n = this.numberOf(name)): Endpoint {
    return { address: new Uint8Array([192, 0, 2, n]), port: PORT };
  }

  tunnelIpOf(name: string): number[] {
    return [10, 0, 0, this.numberOf(name)];
  }

  nameOf(endpoint: Endpoint): string {
    return this.names.get(formatEndpoint(endpoint)) ?? formatEndpoint(endpoint);
  }

  protected register(host: H): H {
    this.hosts.set(host.name, host);
    return host;
  }

  /** Advances time in `step` ms steps; every host's device does one round per step. */
  run(ms: number, step = 10): void {
    const end = this.now + ms;
    while (this.now < end) {
      this.now += step;
      for (const name of this.numbers.keys()) {
        if (!this.hosts.has(name)) this.network.discardArrived(this.endpointOf(name));
      }
      for (const h of this.hosts.values()) h.device.step(this.now);
    }
  }

  /** Delivers a datagram from host `from` to host `to` at the next step, without loss. */
  inject(from: string, to: string, bytes: Uint8Array): void {
    this.network.inject(this.endpointOf(from), this.endpointOf(to), bytes);
  }

  /** Drops everything in flight (e.g. to a host that just restarted). */
  flush(): void {
    this.network.flush();
  }
}

/** One host: a Device with peers 0, 1, ... named after other hosts. */
export abstract class DeviceSimHost<P extends TunnelProtocol> implements ControlSink {
  protocol!: P;
  device!: Device;
  tun!: MemoryTun;
  private readonly received: string[] = [];
  /** What the protocol answered for the packet send() put into the TUN. */
  private sendOutcome: Outcome | null = null;
  /** What it answered for the datagram receive() injected (the first one taken). */
  private receiveOutcome: Outcome | null = null;
  private watching = false;

  constructor(
    readonly net: DeviceSimNet<any>,
    readonly name: string,
    /** Peer i is the host peerNames[i]; endpoint: its endpoint is configured (else learnt). */
    private readonly peerHosts: { name: string; endpoint: boolean }[],
  ) {
    net.numberOf(name);
  }

  protected abstract makeProtocol(): P;

  /** (Re)starts the host: protocol and device state are lost, as in a process restart. */
  boot(): void {
    if (this.device !== undefined) {
      this.collect();
      this.device.close();
    }
    const protocol = this.makeProtocol();
    this.watch(protocol);
    this.protocol = protocol;
    this.tun = new MemoryTun(this.name);
    const bind = new MemoryBind({ network: this.net.network, address: this.net.endpointOf(this.name).address });
    this.device = new Device({ tun: this.tun, bind, protocol, log: quiet, listenPort: PORT, clock: () => this.net.now });
    this.device.start();
    this.peerHosts.forEach((p, i) => {
      this.device.addPeer(i, p.name);
      this.device.setAllowedIps(i, [parseCidr(`${this.net.tunnelIpOf(p.name).join(".")}/32`) as Cidr]);
      if (p.endpoint) this.device.setPeerEndpoint(i, this.net.endpointOf(p.name), this.net.now);
    });
  }

  peerIndex(name: string): number {
    return this.peerHosts.findIndex((p) => p.name === name);
  }

  /** Through the device, as the protocol's timers would. */
  sendControl(peer: PeerId, buffer: Uint8Array, offset: number, length: number): void {
    this.device.sendControl(peer, buffer, offset, length);
  }

  /** Payloads (after the IPv4 header) of the packets the device wrote to the TUN, in order. */
  get delivered(): string[] {
    this.collect();
    return this.received;
  }

  /**
   * The host sends an IPv4 packet carrying `body` to peer `peer`: it goes into the TUN and the
   * device does one round. Returns what the protocol answered (Send, Hold, Drop).
   */
  sendPacket(peer: PeerId, body: Uint8Array): Outcome {
    const to = this.peerHosts[peer].name;
    this.tun.inject(ipv4Packet(body, this.net.tunnelIpOf(this.name), this.net.tunnelIpOf(to)));
    this.sendOutcome = null;
    this.device.step(this.net.now);
    return this.sendOutcome ?? Outcome.Drop;
  }

  /** A datagram from host `from` arrives now; the device does one round. Returns the protocol's Outcome. */
  receive(from: string, bytes: Uint8Array): Outcome {
    this.net.network.inject(this.net.endpointOf(from), this.net.endpointOf(this.name), bytes);
    this.watching = true;
    this.receiveOutcome = null;
    this.device.step(this.net.now);
    this.watching = false;
    return this.receiveOutcome ?? Outcome.Drop;
  }

  private collect(): void {
    for (const p of this.tun.take()) this.received.push(new TextDecoder().decode(p.subarray(20)));
  }

  /** Wraps the protocol's encapsulate and receive to note their Outcomes (the device acts on them). */
  private watch(protocol: P): void {
    const encapsulate = protocol.encapsulate.bind(protocol);
    protocol.encapsulate = (peer, buffer, offset, length, now, sink) => {
      const outcome = encapsulate(peer, buffer, offset, length, now, sink);
      // Packets read from the TUN are encapsulated in the Bind's tx slots; held ones elsewhere.
      if (buffer === this.device.bind.txBytes) this.sendOutcome = outcome;
      return outcome;
    };
    const receive = protocol.receive.bind(protocol);
    protocol.receive = (buffer, offset, length, source, sourceOffset, now, sink) => {
      const outcome = receive(buffer, offset, length, source, sourceOffset, now, sink);
      if (this.watching && this.receiveOutcome === null) this.receiveOutcome = outcome;
      return outcome;
    };
  }
}

// ---- the wontun protocol -------------------------------------------------------------------

export interface SimHostSpec {
  name: string;
  peers: { name: string; endpoint: boolean; keepalive?: number }[];
}

export class SimHost extends DeviceSimHost<WontunProtocol> {
  constructor(
    net: SimNet,
    readonly spec: SimHostSpec,
  ) {
    super(net, spec.name, spec.peers);
    this.boot();
  }

  protected makeProtocol(): WontunProtocol {
    return new WontunProtocol(
      this.spec.name,
      this.spec.peers.map((p, i) => ({ id: i, name: p.name, persistentKeepaliveSeconds: p.keepalive ?? 0 })),
      seededRandom(this.spec.name.length * 7919 + this.net.now),
    );
  }

  /** Sends an application payload to `peer`; true if it left at once (else the device holds or drops it). */
  sendData(peerName: string, text: string): boolean {
    return this.sendPacket(this.peerIndex(peerName), new TextEncoder().encode(text)) === Outcome.Send;
  }

  connected(peerName: string): boolean {
    return this.protocol.stateName(this.peerIndex(peerName)) === "connected";
  }
}

export class SimNet extends DeviceSimNet<SimHost> {
  add(spec: SimHostSpec): SimHost {
    return this.register(new SimHost(this, spec));
  }
}
