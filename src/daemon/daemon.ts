// A running tunnel: the device and its protocol, the operations API over them, and the control
// socket that `wg` and `wontun show` talk to. Both ways of starting wontun build one: `wontun up
// CONFIG` (which also sets up the host) and the wireguard-go-compatible `wontun IFACE` (where
// wg-quick sets up the host and configures the tunnel through the socket).
import { join } from "node:path";
import { loadConfig } from "../config/load.ts";
import { ConfigError, type Config } from "../config/model.ts";
import type { Logger, LogLevel } from "../log.ts";
import { Device } from "../device/device.ts";
import { encodeKey } from "../crypto/keys.ts";
import { formatIp, parseIp } from "../net/ip.ts";
import { kernelIo } from "../device/kernel-io.ts";
import type { Offloads } from "../device/offloads.ts";
import type { KernelTun } from "../device/tun-kernel.ts";
import { ControlServer } from "../control/server.ts";
import { Operations } from "../control/operations.ts";
import { changeFromConfig, reloadChange } from "../control/config-change.ts";
import { formatGetResponse, formatStatusResponse } from "../control/uapi-get.ts";
import { answerSetRequest } from "../control/uapi-set.ts";
import { ControlError } from "../control/model.ts";
import { createProtocol } from "./protocol-factory.ts";
import { EndpointResolver, literalEndpoint, namedEndpoints } from "./endpoint-resolver.ts";
import type { DeviceStatus, MeshStatus } from "../control/model.ts";
import { meshReloadChange } from "../mesh/reload.ts";
import type { MetricsServer } from "../metrics/server.ts";
import { writeDeviceMetrics } from "../metrics/device-metrics.ts";
import { WireGuardProtocol } from "../protocol/wireguard/protocol.ts";
import { SharedSessions } from "../threads/shared-sessions.ts";
import { SharedSessionStore } from "../threads/shared-store.ts";
import { ThreadPool } from "../threads/thread-pool.ts";
import { trimFilePagesFromNowOn } from "../memory/file-pages.ts";

/** The device's longest sleep while Bun's event loop serves something (see bunLoopWait). */
const BUSY_BUN_LOOP_WAIT_MS = 1000;
/**
 * ...and while it serves nothing: what is left there (the page trimmer's checks) can wait. An
 * idle daemon visiting Bun's loop once a second cost ~0.07-0.09 % of a core, twice wireguard-go's.
 */
const QUIET_WAIT_MS = 10_000;

/** Where userspace WireGuard implementations put their control sockets (wg looks there). */
export const SOCKET_DIR = "/var/run/wireguard";

export function socketPath(interfaceName: string, dir = SOCKET_DIR): string {
  return join(dir, `${interfaceName}.sock`);
}

export interface DaemonOptions {
  interfaceName: string;
  config: Config;
  /** The file a reload re-reads; null when there is none (wg-quick owns the config). */
  configPath: string | null;
  log: Logger;
  offloads: Offloads;
  /** Default SOCKET_DIR. */
  socketDir?: string;
  /** The Prometheus endpoint (already listening), if any: start() adds this tunnel's metrics, close() closes it. */
  metrics?: MetricsServer | null;
  /** wontun's version, for wontun_info. */
  version?: string;
  /** Data-path threads (WireGuard mode; default 1). */
  threads?: number;
  /** The log level, for the data-path threads' own loggers. */
  logLevel?: LogLevel;
  /**
   * The largest MTU the data path must carry, when another program may set the interface's MTU
   * above the config's (wg-quick does, for `wontun IFACE`); default the config's MTU.
   */
  largestMtu?: number;
}

/** What a reload did, in words for the log and `wontun reload`. */
export interface ReloadResult {
  ok: boolean;
  message: string;
}

export class TunnelDaemon {
  readonly device: Device;
  readonly operations: Operations;
  private readonly log: Logger;
  private server: ControlServer | null = null;
  /** Resolves hostname endpoints in the background (IP literals are applied at once). */
  private endpoints: EndpointResolver | null = null;
  private config: Config;
  /** The port bound at start (the kernel's pick when the config has none). */
  private startPort = 0;
  /** The offloads in use, in words, for the start-up line. */
  private readonly offloads: string;
  private readonly kernelTun: KernelTun;
  /** The Prometheus endpoint, if any; more sources (mesh gauges) go in with metrics.addSource(). */
  readonly metrics: MetricsServer | null;
  /** The mesh agent ([Mesh]), whose state `get=wontun` reports; null in a static config. */
  mesh: { status(): MeshStatus } | null = null;
  /** The other data-path threads (null: the main thread is the only one). */
  readonly threads: ThreadPool | null = null;
  /** Told when a reload changed the config (the host setup follows address/route changes). */
  onConfigReloaded: ((old: Config, next: Config) => void) | null = null;

  constructor(private readonly options: DaemonOptions) {
    this.log = options.log;
    this.config = options.config;
    this.metrics = options.metrics ?? null;
    const protocol = createProtocol(options.config, options.log, (id) => this.labelOf(id));
    let threads = options.threads ?? 1;
    if (threads > 1 && !(protocol instanceof WireGuardProtocol)) {
      options.log.info("the plaintext protocol runs its data path on one thread");
      threads = 1;
    }
    const sessions = threads > 1 ? new SharedSessions() : null;
    if (sessions) (protocol as WireGuardProtocol).shareSessions(new SharedSessionStore(sessions, threads));
    const dataPathMtu = Math.max(options.config.interface.mtu, options.largestMtu ?? 0);
    const io = kernelIo({
      interfaceName: options.interfaceName,
      offloads: options.offloads,
      mtu: dataPathMtu,
      protocolHeadroom: protocol.headroom,
      authenticated: protocol instanceof WireGuardProtocol,
      log: options.log,
      threaded: sessions ? {} : undefined,
    });
    this.offloads = io.offloads;
    this.kernelTun = io.tun;
    // A full tunnel's fwmark must be on the sockets from their first packet.
    io.bind.setMark(options.config.interface.fwmark);
    this.device = new Device({
      tun: io.tun,
      bind: io.bind,
      protocol,
      log: options.log,
      listenPort: options.config.interface.listenPort,
      maxWaitMs: () => this.bunLoopWait(),
    });
    if (sessions) {
      this.threads = new ThreadPool({
        threads,
        device: this.device,
        tun: io.tun,
        bind: io.bind,
        protocol: protocol as WireGuardProtocol,
        sessions,
        offloads: io.effective,
        mtu: dataPathMtu,
        mark: options.config.interface.fwmark,
        log: options.log,
        logLevel: options.logLevel ?? "info",
      });
    }
    this.operations = new Operations({
      device: this.device,
      protocol,
      mode: options.config.mode,
      interfaceName: options.interfaceName,
      name: options.config.interface.name,
      now: () => performance.now(),
      onPeer: (event, label) => this.log.info(`peer ${label} ${event}`),
    });
  }

  get interfaceName(): string {
    return this.device.tun.name || this.options.interfaceName;
  }

  get socketPath(): string {
    return socketPath(this.interfaceName, this.options.socketDir);
  }

  /** Opens the interface and the sockets, applies the config's peers, and starts serving the control socket. */
  async start(): Promise<void> {
    this.device.start();
    this.startPort = this.device.listenPort;
    const usoMissing = this.options.offloads.uso && !this.kernelTun.uso;
    this.log.info(`interface ${this.interfaceName} open; offloads ${this.offloads}${usoMissing ? " (uso left out: the kernel lacks it, Linux 6.2+)" : ""}`);
    await this.threads?.start();
    // Names never hold up the tunnel: IP-literal endpoints now, hostnames as they resolve.
    this.operations.apply(changeFromConfig(this.config, literalEndpoint));
    this.endpoints = new EndpointResolver({ operations: this.operations, log: this.log });
    this.endpoints.track(namedEndpoints(this.config.peers));
    const mode = this.config.mode;
    this.server = new ControlServer({
      path: this.socketPath,
      log: this.log,
      watcher: this.device,
      handler: {
        get: () => formatGetResponse(this.operations.status()),
        status: () => formatStatusResponse(this.fullStatus()),
        set: (body: string) => answerSetRequest(body, mode, (change) => this.operations.apply(change)),
      },
    });
    this.server.open();
    this.device.addTimer(this.server);
    this.log.info(`control socket ${this.socketPath}`);
    if (this.metrics) {
      // The same status() that `wontun show --json` prints, read at each scrape.
      const version = this.options.version ?? "unknown";
      this.metrics.addSource((out) =>
        writeDeviceMetrics(out, { status: this.fullStatus(), handshakeMessages: this.device.protocol.handshakeMessages, version }));
      this.log.info(`metrics on ${this.metrics.url}`);
    }
  }

  /**
   * How long the device may sleep before Bun's event loop gets a turn: 1 s while something is
   * served there (metrics, the mesh's etcd client, name resolution), else QUIET_WAIT_MS. Signals
   * interrupt the sleep either way (SIGTERM ends an idle daemon in ~50 ms).
   */
  private bunLoopWait(): number {
    return this.metrics !== null || this.mesh !== null || this.endpoints?.active ? BUSY_BUN_LOOP_WAIT_MS : QUIET_WAIT_MS;
  }

  /** Everything `wontun show` and the metrics report: the operations' status, the mesh's and the threads'. */
  private fullStatus(): DeviceStatus {
    const status = this.operations.status();
    if (this.mesh) status.mesh = this.mesh.status();
    if (this.threads) {
      status.threads = [this.device.ownTransfer(), ...this.threads.threadTransfers()];
      for (const [reason, n] of Object.entries(this.threads.drops())) status.drops[reason] = (status.drops[reason] ?? 0) + n;
    }
    return status;
  }

  /**
   * The config as it runs now: the file's interface settings with the peers the tunnel has,
   * including those added or changed through the control socket (SaveConfig writes this).
   */
  runningConfig(): Config {
    const status = this.operations.status();
    const base = this.config;
    const byKey = new Map(base.peers.map((p) => [p.publicKey ? encodeKey(p.publicKey) : p.name, p]));
    return {
      ...base,
      // A port the kernel picked (ListenPort absent) stays absent unless a request moved it.
      interface: {
        ...base.interface,
        privateKey: status.privateKey ?? base.interface.privateKey,
        listenPort: base.interface.listenPort === 0 && status.listenPort === this.startPort ? 0 : status.listenPort,
        fwmark: status.fwmark,
      },
      peers: status.peers.map((peer) => {
        const fromFile = byKey.get(peer.publicKey ? encodeKey(peer.publicKey) : peer.name);
        // A name-based endpoint keeps its name; one learnt or set at run time is written as an address.
        const endpoint = fromFile?.endpoint && !parseIp(fromFile.endpoint.host) ? fromFile.endpoint
          : peer.endpoint ? { host: formatIp(peer.endpoint.address), port: peer.endpoint.port } : (fromFile?.endpoint ?? null);
        return {
          name: peer.name,
          endpoint,
          allowedIps: peer.allowedIps,
          persistentKeepalive: peer.persistentKeepalive,
          publicKey: peer.publicKey,
          presharedKey: peer.presharedKey,
        };
      }),
    };
  }

  /**
   * Start-up is over (the daemon runs and said so): its garbage goes first, then the executable's
   * pages it touched, and again after each burst of handshakes has settled.
   */
  settleAfterStartup(): void {
    this.device.compactHeapNow();
    const trimmer = trimFilePagesFromNowOn(this.log);
    this.device.housekeeping.onSettled = () => trimmer.check(true);
  }

  async run(): Promise<void> {
    await this.device.run();
    await this.threads?.stop();
  }

  stop(): void {
    this.endpoints?.stop();
    this.device.stop();
  }

  /** Closes the control socket (removing its file) and the device (removing the interface). */
  close(): void {
    this.endpoints?.stop();
    this.metrics?.close();
    this.server?.close();
    this.server = null;
    this.threads?.abandon();
    this.device.close();
  }

  /**
   * Re-reads the config file and applies what changed; a file with an error is refused whole
   * and nothing changes. Peers the file does not change keep their sessions.
   */
  async reload(): Promise<ReloadResult> {
    const path = this.options.configPath;
    if (path === null) return { ok: false, message: "no config file to reload (this tunnel is configured through its control socket)" };
    let next: Config;
    try {
      next = loadConfig(path, { wireguard: true });
    } catch (err) {
      const why = err instanceof ConfigError ? `config error: ${err.message}` : (err as Error).message;
      return { ok: false, message: `reload refused, nothing changed: ${why}` };
    }
    const old = this.config;
    if (next.mode !== old.mode) {
      return { ok: false, message: `reload refused, nothing changed: the config switches to ${next.mode} mode, which needs a restart` };
    }
    try {
      const change = reloadChange(old, next, literalEndpoint);
      // [Mesh]: members are not in the file; only the file's own peers are replaced.
      this.operations.apply(old.mesh ? meshReloadChange(old, next, change) : change);
    } catch (err) {
      if (err instanceof ControlError) return { ok: false, message: `reload refused, nothing changed: ${err.message}` };
      throw err;
    }
    if (next.interface.name !== old.interface.name) this.operations.setLocalName(next.interface.name);
    this.config = next;
    // Changed or new hostname endpoints are resolved in the background; unchanged ones keep their state.
    this.endpoints?.track(namedEndpoints(next.peers));
    this.onConfigReloaded?.(old, next);
    return { ok: true, message: `reloaded ${path}: ${this.operations.peerCount} peer(s)` };
  }

  /** How log lines name a peer: its name, or its short public key (read when the line is made). */
  private labelOf(id: number): string {
    const entry = this.operations?.registry.get(id);
    if (!entry) return `#${id}`;
    return entry.name || `${entry.key.slice(0, 8)}…`;
  }
}
