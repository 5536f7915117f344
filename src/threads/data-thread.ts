// A data-path thread (a Worker, started by ThreadPool): its own TUN queue and its own socket in
// the listening socket's SO_REUSEPORT group, served by its own Device loop that seals and opens
// with the sessions the main thread publishes (ThreadProtocol). The main thread tells it of every
// peer change; it tells the main thread what only the main thread can act on.
import type { UdpBind } from "../device/bind-udp.ts";
import { Device } from "../device/device.ts";
import { kernelIo } from "../device/kernel-io.ts";
import { selectAeadBackend } from "../crypto/aead.ts";
import { createLogger, type Logger } from "../log.ts";
import { EventFd } from "../sys/eventfd.ts";
import { SharedSessions } from "./shared-sessions.ts";
import { ThreadProtocol, type ThreadEvents } from "./thread-protocol.ts";
import type { FromThread, ThreadSetup, ToThread } from "./thread-messages.ts";

declare const self: Worker;

let device: Device | null = null;
let protocol: ThreadProtocol | null = null;
let bind: UdpBind | null = null;
let clockOffset = 0;

const post = (message: FromThread, transfer: ArrayBuffer[] = []): void => self.postMessage(message, transfer);
const now = (): number => performance.now() + clockOffset;

/** The thread's lines carry its number; its start-up chatter is debug, the main thread says it once. */
function threadLogger(setup: ThreadSetup): Logger {
  const base = createLogger(setup.logLevel);
  const tag = `thread ${setup.thread}: `;
  return {
    traceOn: base.traceOn,
    debugOn: base.debugOn,
    error: (m) => base.error(tag + m),
    warn: (m) => base.warn(tag + m),
    info: (m) => base.debug(tag + m),
    debug: (m) => base.debug(tag + m),
    trace: (m) => base.trace(tag + m),
  };
}

async function start(setup: ThreadSetup): Promise<void> {
  const log = threadLogger(setup);
  clockOffset = performance.timeOrigin - setup.timeOrigin;
  const mainWake = new EventFd(setup.mainWakeFd);
  const events: ThreadEvents = {
    held: (id, packet) => post({ kind: "held", id, packet }, [packet.buffer as ArrayBuffer]),
    handshake: (datagram, source) => {
      post({ kind: "handshake", datagram, source });
      mainWake.signal();
    },
    wake: () => mainWake.signal(),
    endpoint: (id) => {
      const endpoint = device?.peerEndpoint(id);
      if (endpoint) post({ kind: "endpoint", id, endpoint });
      mainWake.signal();
    },
  };
  const sessions = new SharedSessions(setup.sessions);
  protocol = new ThreadProtocol(sessions, selectAeadBackend(), setup.thread, setup.threads, setup.mtu, events);
  const io = kernelIo({
    interfaceName: setup.interfaceName,
    offloads: setup.offloads,
    mtu: setup.mtu,
    protocolHeadroom: protocol.headroom,
    authenticated: true,
    log,
    threaded: { queue: { fd: setup.tunFd, name: setup.interfaceName }, socket: setup.socket },
  });
  io.bind.setMark(setup.mark);
  bind = io.bind;
  // Everything this thread is told comes with an eventfd write: it may sleep until its timers.
  device = new Device({ tun: io.tun, bind: io.bind, protocol, log, listenPort: setup.socket.port, clock: now, maxWaitMs: 60_000 });
  device.start();
  const wake = new EventFd(setup.wakeFd);
  device.watch(wake.fd, () => wake.drain());
  // What this thread dropped, for the main thread's `wontun show`: at most once a second, and
  // only when it changed (an idle thread is not woken for it).
  const dropCounts = (): Record<string, number> => ({ ...protocol!.counters, ...(device!.counters as unknown as Record<string, number>) });
  const total = (): number => protocol!.dropTotal() + device!.counters.total();
  let published = 0;
  let lastPublish = 0;
  device.addTimer({
    nextDeadline: () => (total() !== published ? lastPublish + 1000 : Number.POSITIVE_INFINITY),
    tick: (at) => {
      lastPublish = at;
      published = total();
      sessions.publishDrops(setup.thread, dropCounts());
    },
  });
  for (const peer of setup.peers) {
    protocol.addPeer(peer.id, peer.peerSlot);
    device.addPeer(peer.id, peer.label);
    device.setAllowedIps(peer.id, peer.allowedIps);
    if (peer.endpoint) applyEndpoint(peer.id, peer.endpoint);
  }
  post({ kind: "ready", thread: setup.thread });
  await device.run();
  device.close();
  post({ kind: "stopped", thread: setup.thread });
}

function applyEndpoint(id: number, endpoint: NonNullable<ThreadSetup["peers"][number]["endpoint"]>): void {
  protocol!.applyingMainChange = true;
  try {
    device!.setPeerEndpoint(id, endpoint, now());
  } finally {
    protocol!.applyingMainChange = false;
  }
}

function handle(message: ToThread): void {
  if (message.kind === "start") {
    start(message.setup).catch((err: Error) => post({ kind: "failed", thread: message.setup.thread, message: err.message }));
    return;
  }
  if (device === null || protocol === null) return;
  switch (message.kind) {
    case "peer-add":
      protocol.addPeer(message.id, message.peerSlot);
      device.addPeer(message.id, message.label);
      break;
    case "peer-remove":
      device.removePeer(message.id);
      protocol.removePeer(message.id);
      break;
    case "allowed-ips":
      device.setAllowedIps(message.id, message.cidrs);
      break;
    case "endpoint":
      applyEndpoint(message.id, message.endpoint);
      break;
    case "socket":
      bind!.replaceSocket(message.socket);
      break;
    case "stop":
      device.stop();
      break;
  }
}

self.onmessage = (event: MessageEvent<ToThread>) => {
  try {
    handle(event.data);
  } catch (err) {
    post({ kind: "failed", thread: -1, message: (err as Error).message });
  }
};
