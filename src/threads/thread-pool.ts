// The main thread's side of a multi-threaded data path. The main thread is data-path thread 0
// (its Device, with the handshakes, timers and control socket); ThreadPool starts threads
// 1..N-1, each with its own TUN queue (IFF_MULTI_QUEUE) and its own socket in the listening
// socket's SO_REUSEPORT group. Datagrams are steered to their peer's receiving thread
// (src/sys/reuseport-steering.ts), outgoing packets to a queue by flow hash
// (src/sys/tun-steering.ts), so every thread sends and a peer is opened in order. It keeps
// them in step with the main Device (DeviceMirror), acts on what they ask, and folds what they
// did into the protocol's timers and the transfer counters.
import type { UdpBind } from "../device/bind-udp.ts";
import type { Device, DeviceTimer } from "../device/device.ts";
import type { DeviceMirror } from "../device/device-mirror.ts";
import type { Offloads } from "../device/offloads.ts";
import type { KernelTun } from "../device/tun-kernel.ts";
import type { Logger, LogLevel } from "../log.ts";
import { formatEndpoint, type Endpoint } from "../net/endpoint.ts";
import type { Cidr } from "../net/ip.ts";
import type { PeerId } from "../protocol/tunnel.ts";
import type { WireGuardProtocol } from "../protocol/wireguard/protocol.ts";
import { libc } from "../sys/libc.ts";
import { EventFd } from "../sys/eventfd.ts";
import { steerByReceiverIndex } from "../sys/reuseport-steering.ts";
import { steerTunByHash } from "../sys/tun-steering.ts";
import { envSwitch, TUN_STEERING_ENV } from "../switches.ts";
import { openReusePortSibling, setSocketMark, type UdpSocket } from "../sys/udp.ts";
import { A_AUTH_RECEIVED, A_AUTH_SENT, A_DATA_RECEIVED, A_DATA_SENT, SharedSessions } from "./shared-sessions.ts";
import type { FromThread, PeerState, ThreadSetup, ToThread } from "./thread-messages.ts";

/** Outgoing flows go to a TUN queue by their hash (WONTUN_TUN_STEERING=0: the kernel's choice). */
const TUN_BY_HASH = envSwitch(TUN_STEERING_ENV, true);

/**
 * How often the threads' activity is folded into the timers (they run in seconds) while there is
 * any; a quiet tunnel is not looked at until a thread wakes the main thread (QUIET_MS).
 */
const ABSORB_EVERY_MS = 250;
/** How long a thread may take to start or to stop before it is given up on. */
const THREAD_TIMEOUT_MS = 5000;

export interface ThreadPoolOptions {
  threads: number;
  device: Device;
  tun: KernelTun;
  bind: UdpBind;
  protocol: WireGuardProtocol;
  sessions: SharedSessions;
  offloads: Offloads;
  mtu: number;
  mark: number;
  log: Logger;
  logLevel: LogLevel;
}

interface DataThread {
  worker: Worker;
  wake: EventFd;
  tunFd: number;
  socket: UdpSocket;
  stopped: Promise<void>;
  /** The thread has closed its queue and socket and ended. */
  done: boolean;
}

export class ThreadPool implements DeviceMirror, DeviceTimer {
  private readonly threads: DataThread[] = [];
  private readonly peers = new Map<PeerId, PeerState>();
  private readonly mainWake = new EventFd();
  /** Per peer slot, the activity times already folded in (4 per slot). */
  private readonly absorbed: Float64Array;
  private nextAbsorb = 0;
  private mark: number;
  private closed = false;

  constructor(private readonly options: ThreadPoolOptions) {
    this.absorbed = new Float64Array(options.sessions.peerCapacity * 4);
    this.mark = options.mark;
  }

  get count(): number {
    return this.options.threads;
  }

  /**
   * Opens the other queues and sockets and starts the threads (after Device.start, before any
   * peer is added); resolves once every thread runs.
   */
  async start(): Promise<void> {
    const { device, tun, bind, threads, log } = this.options;
    device.setMirror(this);
    device.watch(this.mainWake.fd, () => {
      this.mainWake.drain();
      const now = performance.now();
      this.serviceRequests(now);
      // Traffic resumed: fold it in soon and from then on.
      this.nextAbsorb = Math.min(this.nextAbsorb, now + ABSORB_EVERY_MS);
    });
    device.addTimer(this);
    const listen = bind.listenSocket!;
    const ready: Promise<void>[] = [];
    for (let t = 1; t < threads; t++) {
      const socket = openReusePortSibling(listen, { port: listen.port, fwmark: this.mark, gro: this.options.offloads["udp-gro"] });
      const tunFd = tun.addQueue();
      ready.push(this.spawn(t, tunFd, socket));
    }
    steerByReceiverIndex(listen.fd, threads);
    // Without the program the kernel's default applies: chosen with the switch, else a warning.
    const steeringFailed = TUN_BY_HASH ? steerTunByHash(tun.fd) : null;
    if (steeringFailed !== null) log.warn(`outgoing flows are spread by the kernel's default instead of by hash (${steeringFailed})`);
    await Promise.all(ready);
    const flows = TUN_BY_HASH && steeringFailed === null ? "hash" : "the kernel's default";
    log.info(`data path on ${threads} threads (a TUN queue and a socket each; peers spread over them by index, flows by ${flows})`);
  }

  private spawn(thread: number, tunFd: number, socket: UdpSocket): Promise<void> {
    const { log } = this.options;
    const worker = new Worker(threadScript());
    const wake = new EventFd();
    let onReady!: () => void;
    let onFailed!: (err: Error) => void;
    let onStopped!: () => void;
    const readyPromise = new Promise<void>((resolve, reject) => {
      onReady = resolve;
      onFailed = reject;
    });
    const stopped = new Promise<void>((resolve) => (onStopped = resolve));
    const entry: DataThread = { worker, wake, tunFd, socket, stopped, done: false };
    stopped.then(() => (entry.done = true));
    this.threads.push(entry);
    worker.onmessage = (event: MessageEvent<FromThread>) => {
      const message = event.data;
      if (message.kind === "ready") onReady();
      else if (message.kind === "failed") {
        log.error(`data-path thread ${thread}: ${message.message}`);
        onFailed(new Error(`data-path thread ${thread} failed: ${message.message}`));
      } else if (message.kind === "stopped") onStopped();
      else this.fromThread(message);
    };
    worker.onerror = (event) => {
      log.error(`data-path thread ${thread}: ${event.message}`);
      onFailed(new Error(`data-path thread ${thread}: ${event.message}`));
      onStopped();
    };
    worker.addEventListener("close", () => onStopped());
    const setup: ThreadSetup = {
      thread,
      threads: this.options.threads,
      sessions: this.options.sessions.layout,
      interfaceName: this.options.tun.name,
      tunFd,
      socket,
      mark: this.mark,
      // USO as the kernel took it on the interface (not before Linux 6.2), not as asked.
      offloads: { ...this.options.offloads, uso: this.options.tun.uso },
      mtu: this.options.mtu,
      logLevel: this.options.logLevel,
      wakeFd: wake.fd,
      mainWakeFd: this.mainWake.fd,
      timeOrigin: performance.timeOrigin,
      peers: [...this.peers.values()],
    };
    worker.postMessage({ kind: "start", setup } satisfies ToThread);
    return withTimeout(readyPromise, THREAD_TIMEOUT_MS, `data-path thread ${thread} did not start`);
  }

  /** Asks every thread to stop and waits for them (each closes its queue and socket). */
  async stop(): Promise<void> {
    this.broadcast({ kind: "stop" });
    for (const t of this.threads) {
      try {
        await withTimeout(t.stopped, THREAD_TIMEOUT_MS, "");
      } catch {
        // Given up on below.
      }
    }
    this.abandon();
  }

  /** Ends every thread now; the fds of one that did not stop by itself are closed here. */
  abandon(): void {
    for (const t of this.threads) {
      t.worker.terminate();
      if (!t.done) {
        libc.close(t.tunFd);
        libc.close(t.socket.fd);
      }
      t.wake.close();
    }
    if (!this.closed) this.mainWake.close();
    this.closed = true;
    this.threads.length = 0;
  }

  private broadcast(message: ToThread): void {
    for (const t of this.threads) {
      t.worker.postMessage(message);
      t.wake.signal();
    }
  }

  // ---- what the threads ask ----------------------------------------------------------------

  private fromThread(message: FromThread): void {
    const { device, log } = this.options;
    const now = performance.now();
    switch (message.kind) {
      case "held":
        device.sendFromThread(message.id, message.packet, now);
        break;
      case "handshake":
        device.receiveFromThread(message.datagram, message.source, now);
        break;
      case "endpoint": {
        const known = this.peers.get(message.id);
        if (known === undefined) break;
        const before = known.endpoint;
        device.setPeerEndpoint(message.id, message.endpoint, now);
        if (before) log.info(`peer ${known.label}: endpoint ${formatEndpoint(before)} -> ${formatEndpoint(message.endpoint)}`);
        else if (log.debugOn) log.debug(`peer ${known.label}: endpoint ${formatEndpoint(message.endpoint)}`);
        break;
      }
    }
  }

  /** Handshakes and key confirmations the threads asked for. */
  private serviceRequests(now: number): void {
    const { sessions, protocol, device } = this.options;
    for (const peer of this.peers.values()) {
      const confirm = sessions.takeConfirmRequest(peer.peerSlot);
      if (confirm >= 0) {
        const next = protocol.peers.get(peer.id)?.next;
        if (next && sessions.slotOfIndex(next.localIndex) === confirm) protocol.confirmFromThread(peer.id, next.localIndex);
      }
      if (sessions.takeHandshakeRequest(peer.peerSlot)) protocol.requestHandshake(peer.id, now, device);
    }
  }

  // ---- DeviceTimer: fold the threads' activity into the protocol's timers ---------------------

  nextDeadline(): number {
    return this.nextAbsorb;
  }

  tick(now: number): void {
    let active = false;
    const { sessions, protocol } = this.options;
    const absorbed = this.absorbed;
    for (const peer of this.peers.values()) {
      const s = peer.peerSlot;
      const at = s * 4;
      const dataSent = fresh(sessions.lastActivity(s, A_DATA_SENT), absorbed, at);
      const dataReceived = fresh(sessions.lastActivity(s, A_DATA_RECEIVED), absorbed, at + 1);
      const authSent = fresh(sessions.lastActivity(s, A_AUTH_SENT), absorbed, at + 2);
      const authReceived = fresh(sessions.lastActivity(s, A_AUTH_RECEIVED), absorbed, at + 3);
      if (dataSent + dataReceived + authSent + authReceived > 0) {
        protocol.absorbThreadActivity(peer.id, dataSent, dataReceived, authSent, authReceived);
        active = true;
      }
    }
    this.nextAbsorb = active ? now + ABSORB_EVERY_MS : Number.POSITIVE_INFINITY;
    this.serviceRequests(now);
  }

  // ---- DeviceMirror ------------------------------------------------------------------------

  peerAdded(id: PeerId, label: string): void {
    const peerSlot = this.options.sessions.peerSlot(id);
    this.absorbed.fill(0, peerSlot * 4, peerSlot * 4 + 4);
    this.peers.set(id, { id, label, peerSlot, allowedIps: [], endpoint: null });
    this.broadcast({ kind: "peer-add", id, label, peerSlot });
  }

  peerRemoved(id: PeerId): void {
    if (!this.peers.delete(id)) return;
    this.options.sessions.releasePeer(id);
    this.broadcast({ kind: "peer-remove", id });
  }

  allowedIpsSet(id: PeerId, cidrs: Cidr[]): void {
    // Prefixes another peer held move (the threads' devices do the same move).
    for (const peer of this.peers.values()) {
      if (peer.id !== id) peer.allowedIps = peer.allowedIps.filter((c) => !cidrs.some((n) => sameCidr(c, n)));
    }
    const peer = this.peers.get(id);
    if (peer) peer.allowedIps = cidrs.slice();
    this.broadcast({ kind: "allowed-ips", id, cidrs });
  }

  endpointSet(id: PeerId, endpoint: Endpoint): void {
    const peer = this.peers.get(id);
    if (peer) peer.endpoint = endpoint;
    this.broadcast({ kind: "endpoint", id, endpoint });
  }

  listenPortChanged(port: number): void {
    const listen = this.options.bind.listenSocket!;
    for (const t of this.threads) {
      // The thread closes its old socket when it takes the new one.
      t.socket = openReusePortSibling(listen, { port, fwmark: this.mark, gro: this.options.offloads["udp-gro"] });
      t.worker.postMessage({ kind: "socket", socket: t.socket } satisfies ToThread);
      t.wake.signal();
    }
    steerByReceiverIndex(listen.fd, this.options.threads);
  }

  markChanged(mark: number): void {
    this.mark = mark;
    for (const t of this.threads) setSocketMark(t.socket.fd, mark);
  }

  transferOf(id: PeerId): { rxBytes: number; txBytes: number } {
    const peer = this.peers.get(id);
    return peer ? this.options.sessions.transfer(peer.peerSlot, 1) : { rxBytes: 0, txBytes: 0 };
  }

  /** What the other threads dropped, by reason (their last once-a-second report). */
  drops(): Record<string, number> {
    return this.options.sessions.drops(1);
  }

  /** Datagram bytes each thread moved (thread 0: the main thread's, which is not counted here). */
  threadTransfers(): number[] {
    const out: number[] = [];
    for (let t = 1; t < this.options.threads; t++) out.push(this.options.sessions.threadTransfer(t));
    return out;
  }
}

/**
 * The data-path thread's script. In the executable it is a second entry point of the build
 * (package.json), kept under its path below the entry points' common folder, src/.
 */
function threadScript(): string {
  if (import.meta.url.startsWith("file:///$bunfs/")) return "/$bunfs/root/threads/data-thread.ts";
  return new URL("./data-thread.ts", import.meta.url).href;
}

/** `value` if it is newer than what absorbed[at] holds (which it then becomes), else 0. */
function fresh(value: number, absorbed: Float64Array, at: number): number {
  if (value <= absorbed[at]) return 0;
  absorbed[at] = value;
  return value;
}

function sameCidr(a: Cidr, b: Cidr): boolean {
  return a.prefix === b.prefix && a.address.length === b.address.length && a.address.every((x, i) => x === b.address[i]);
}

function withTimeout<T>(promise: Promise<T>, ms: number, message: string): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(message)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}
