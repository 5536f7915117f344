// `wontun up CONFIG`: bring the tunnel up in the foreground until SIGINT/SIGTERM, with the host
// set up around it as wg-quick would (src/host), and its control socket served for `wg` and
// `wontun show`; SIGHUP re-reads the config.
import { defineCommand } from "citty";
import { loadConfig, interfaceNameFromPath } from "../../config/load.ts";
import { validateInterfaceName } from "../../sys/tun.ts";
import { DEFAULT_THREADS, parseThreads } from "../../threads/thread-count.ts";
import { createLogger, isLogLevel, LOG_LEVELS, type LogLevel } from "../../log.ts";
import { TunnelDaemon } from "../../daemon/daemon.ts";
import { handleSignals } from "../../daemon/lifecycle.ts";
import { socketDir } from "../running-tunnel.ts";
import { HostSetup } from "../../host/setup.ts";
import { notifyReady, notifyReloading, notifyStopping } from "../../host/notify.ts";
import { ALL_OFFLOADS, OFFLOAD_NAMES, parseOffloads, type Offloads } from "../../device/offloads.ts";
import { forcedAeadBackend } from "../../crypto/aead.ts";
import { parseCommandLine, parseIntegerOption } from "../args.ts";
import { UsageError } from "../errors.ts";
import { VERSION } from "../version.ts";
import type { MeshAgent } from "../../mesh/agent.ts";
import { meshCachePath } from "../../mesh/config.ts";
import { writeMeshMetrics } from "../../mesh/metrics.ts";
import { ipEquals } from "../../net/ip.ts";
import { MetricsServer, parseMetricsAddress, type MetricsAddress } from "../../metrics/server.ts";
import { restartWithDaemonRuntime } from "../../daemon/bun-runtime.ts";

export const upArgs = {
  config: {
    type: "positional",
    description: "Config file: wg-style .conf/.ini or .toml",
    required: true,
  },
  interface: {
    type: "string",
    description: "Interface name (default: the config file's name without extension)",
  },
  "log-level": {
    type: "string",
    description: `Log level: ${LOG_LEVELS.join("|")}`,
    default: "info",
  },
  fwmark: {
    type: "string",
    description: "Firewall mark for the tunnel's UDP sockets (overrides FwMark)",
  },
  offload: {
    type: "string",
    description: `Offloads: all (default), none, or a list of ${OFFLOAD_NAMES.join(",")} (env WONTUN_OFFLOAD)`,
  },
  threads: {
    type: "string",
    description: `Data-path threads in WireGuard mode: 1-16, or auto: one per core up to 4, 1 on 2 cores or fewer (env WONTUN_THREADS; default ${DEFAULT_THREADS})`,
  },
  metrics: {
    type: "string",
    description: "Serve Prometheus metrics at http://ADDR/metrics: HOST:PORT or [IPv6]:PORT, e.g. 127.0.0.1:9586 (env WONTUN_METRICS; default off)",
  },
} as const;

export function parseLogLevel(value: unknown): LogLevel {
  const text = String(value);
  if (!isLogLevel(text)) throw new UsageError(`--log-level must be one of ${LOG_LEVELS.join(", ")}, got "${text}"`);
  return text;
}

/** --offload wins over WONTUN_OFFLOAD; neither means all. */
function chooseOffloads(flag: string | undefined): Offloads {
  const [source, text] = flag !== undefined ? ["--offload", flag] : ["WONTUN_OFFLOAD", process.env.WONTUN_OFFLOAD];
  if (text === undefined) return ALL_OFFLOADS;
  try {
    return parseOffloads(text);
  } catch (err) {
    throw new UsageError(`${source}: ${(err as Error).message}`);
  }
}

/** --threads wins over WONTUN_THREADS; neither means DEFAULT_THREADS. */
export function chooseThreads(flag: string | undefined): number {
  const [source, text] = flag !== undefined ? ["--threads", flag] : ["WONTUN_THREADS", process.env.WONTUN_THREADS ?? DEFAULT_THREADS];
  const threads = parseThreads(text);
  if (typeof threads === "string") throw new UsageError(`${source} ${threads}`);
  return threads;
}

/** --metrics wins over WONTUN_METRICS; neither (or an empty variable) means no endpoint. */
export function chooseMetricsAddress(flag: string | undefined): MetricsAddress | null {
  const [source, text] = flag !== undefined ? ["--metrics", flag] : ["WONTUN_METRICS", process.env.WONTUN_METRICS];
  if (text === undefined || (text === "" && flag === undefined)) return null;
  const address = parseMetricsAddress(text);
  if (typeof address === "string") throw new UsageError(`${source}: ${address}`);
  return address;
}

export const upCommand = defineCommand({
  meta: { name: "up", description: "Bring a tunnel up and run it in the foreground (Ctrl-C to stop)" },
  args: upArgs,
  async run({ rawArgs }) {
    const args = parseCommandLine("up", rawArgs, upArgs);
    // Before the config is read: a config on a pipe (`up <(...)`) can be read only once.
    const notRestarted = restartWithDaemonRuntime();
    const level = parseLogLevel(args["log-level"]);
    const offloads = chooseOffloads(args.offload);
    const threads = chooseThreads(args.threads);
    const aead = forcedAeadBackend();
    if (aead !== null && typeof aead === "object") throw new UsageError(aead.error);
    const interfaceName = args.interface ?? interfaceNameFromPath(args.config);
    const badName = validateInterfaceName(interfaceName);
    if (badName) throw new UsageError(args.interface ? badName : `${badName}; pass --interface NAME`);
    const config = loadConfig(args.config, { wireguard: true });
    if (args.fwmark !== undefined) config.interface.fwmark = parseIntegerOption("fwmark", args.fwmark, 0, 0xffffffff, { off: true });
    const metricsAddress = chooseMetricsAddress(args.metrics);

    const log = createLogger(level);
    if (notRestarted) log.debug(notRestarted);
    log.info(`wontun ${VERSION} starting ${interfaceName} from ${args.config}`);
    for (const warning of config.warnings) log.warn(warning);
    // A taken metrics port fails here, before anything on the host or in a store has changed.
    const metrics = metricsAddress ? MetricsServer.listen(metricsAddress, log) : null;
    // [Mesh]: the address is claimed in the store (or taken from the cache) before the host is set up.
    // Loaded only for a mesh: the etcd client (gRPC) costs ~40 MiB and ~150 ms at start.
    const mesh: MeshAgent | null = config.mesh
      ? new (await import("../../mesh/agent.ts")).MeshAgent({ config, mesh: config.mesh, log, version: VERSION, cachePath: meshCachePath(config.mesh, interfaceName) })
      : null;
    if (mesh) {
      const address = await mesh.prepare();
      if (!config.interface.addresses.some((a) => ipEquals(a.address, address.address))) config.interface.addresses = [address, ...config.interface.addresses];
    }
    // Before the device: a full tunnel's fwmark must be on its sockets from the start; PreUp runs.
    const host = await HostSetup.prepare({ config, interfaceName, configPath: args.config, log });
    const daemon = new TunnelDaemon({
      interfaceName, config, configPath: args.config, log, offloads, socketDir: socketDir(), metrics, version: VERSION, threads, logLevel: level,
    });
    host.runningConfig = () => daemon.runningConfig();
    daemon.onConfigReloaded = (_old, next) => {
      host.configReloaded(next);
      mesh?.reconfigure(next);
    };
    daemon.mesh = mesh;
    if (mesh && metrics) metrics.addSource((out) => writeMeshMetrics(out, daemon.interfaceName, mesh.status()));
    // systemd's readiness protocol; a NOTIFY_SOCKET that cannot be reached is only worth a warning.
    const tellSystemd = (send: () => boolean) => {
      try {
        send();
      } catch (e) {
        log.warn(`systemd notification failed: ${(e as Error).message}`);
      }
    };
    const signals = handleSignals(daemon, log, {
      onStop: () => tellSystemd(notifyStopping),
      beforeReload: () => tellSystemd(notifyReloading),
      afterReload: () => tellSystemd(() => notifyReady()),
    });
    try {
      await daemon.start();
      if (mesh) {
        mesh.start(daemon.operations);
        daemon.device.addTimer(mesh.deviceTimer);
      }
      await host.apply(daemon.interfaceName);
      log.info(`interface ${daemon.interfaceName} up: ${host.describe()}`);
      log.info(`${daemon.operations.peerCount} peer(s) configured; running`);
      tellSystemd(() => notifyReady(`${daemon.interfaceName} up`));
      daemon.settleAfterStartup();
      signals.running();
      await daemon.run();
    } finally {
      signals.release();
      await mesh?.stop();
      await host.teardown(() => daemon.close());
    }
    log.info("stopped; interface removed");
  },
});
