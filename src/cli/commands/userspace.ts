// The wireguard-go-compatible invocation, so that wg-quick can use wontun as its userspace
// implementation (WG_QUICK_USERSPACE_IMPLEMENTATION=wontun): `wontun [-f|--foreground] IFACE`
// (the bare form only when wg-quick's variable is set, see isUserspaceInvocation)
// creates the TUN interface and its control socket, with no key and no peers; wg-quick then
// sets both through the socket (`wg setconf`) and owns addresses, routes and DNS. Without -f
// (or WG_PROCESS_FOREGROUND=1) it returns once the tunnel is ready and the daemon runs on. The
// daemon stops on SIGTERM/SIGINT and when its interface is deleted (`wg-quick down`).
import { ALL_OFFLOADS, parseOffloads, type Offloads } from "../../device/offloads.ts";
import { chooseThreads } from "./up.ts";
import { createLogger, type LogLevel } from "../../log.ts";
import { TunnelDaemon } from "../../daemon/daemon.ts";
import { reportFailure, reportReady, runDetached } from "../../daemon/detach.ts";
import { restartWithDaemonRuntime } from "../../daemon/bun-runtime.ts";
import { emptyWireGuardConfig } from "../../config/model.ts";
import { MAX_MTU } from "../../config/validate.ts";
import { validateInterfaceName } from "../../sys/tun.ts";
import type { KernelTun } from "../../device/tun-kernel.ts";
import { handleSignals } from "../../daemon/lifecycle.ts";
import { UsageError } from "../errors.ts";
import { socketDir } from "../running-tunnel.ts";
import { VERSION } from "../version.ts";
import { MetricsServer, parseMetricsAddress, type MetricsAddress } from "../../metrics/server.ts";

const FOREGROUND_FLAGS = new Set(["-f", "--foreground"]);

/**
 * True when argv is this invocation: one interface name and nothing else, with -f/--foreground,
 * WG_PROCESS_FOREGROUND=1, or from wg-quick (WG_QUICK_USERSPACE_IMPLEMENTATION is in its
 * environment). A bare `wontun NAME` otherwise stays an unknown command: a mistyped command must
 * not create an interface.
 */
export function isUserspaceInvocation(argv: string[], env: NodeJS.ProcessEnv = process.env): boolean {
  const rest = argv.filter((a) => !FOREGROUND_FLAGS.has(a));
  const asked = rest.length < argv.length || env.WG_PROCESS_FOREGROUND === "1" || (env.WG_QUICK_USERSPACE_IMPLEMENTATION ?? "") !== "";
  return asked && rest.length === 1 && !rest[0].startsWith("-") && argv.length - rest.length <= 1 &&
    validateInterfaceName(rest[0]) === null && !/\.(conf|ini|toml)$/i.test(rest[0]);
}

/** wireguard-go's LOG_LEVEL (verbose, error, silent) in wontun's terms. */
function logLevelFromEnv(): LogLevel {
  switch (process.env.LOG_LEVEL) {
    case "verbose":
    case "debug":
      return "debug";
    case "error":
    case "silent":
      return "error";
    default:
      return "info";
  }
}

function offloadsFromEnv(): Offloads {
  const text = process.env.WONTUN_OFFLOAD;
  if (text === undefined) return ALL_OFFLOADS;
  try {
    return parseOffloads(text);
  } catch (err) {
    throw new UsageError(`WONTUN_OFFLOAD: ${(err as Error).message}`);
  }
}

/** WONTUN_METRICS=ADDR serves Prometheus metrics (no flag here: wg-quick passes none). */
function metricsFromEnv(): MetricsAddress | null {
  const text = process.env.WONTUN_METRICS;
  if (text === undefined || text === "") return null;
  const address = parseMetricsAddress(text);
  if (typeof address === "string") throw new UsageError(`WONTUN_METRICS: ${address}`);
  return address;
}

export async function runUserspace(argv: string[]): Promise<number> {
  const iface = argv.find((a) => !FOREGROUND_FLAGS.has(a))!;
  const offloads = offloadsFromEnv();
  const threads = chooseThreads(undefined);
  const metricsAddress = metricsFromEnv();
  const foreground = argv.some((a) => FOREGROUND_FLAGS.has(a)) || process.env.WG_PROCESS_FOREGROUND === "1";
  if (!foreground) return runDetached(["--foreground", iface], process.env.LOG_LEVEL !== undefined && process.env.LOG_LEVEL !== "silent");
  const notRestarted = restartWithDaemonRuntime();

  const log = createLogger(logLevelFromEnv());
  if (notRestarted) log.debug(notRestarted);
  let metrics: MetricsServer | null = null;
  try {
    metrics = metricsAddress ? MetricsServer.listen(metricsAddress, log) : null;
  } catch (err) {
    reportFailure(`wontun: ${(err as Error).message}`);
    throw err;
  }
  const daemon = new TunnelDaemon({
    interfaceName: iface,
    config: emptyWireGuardConfig(),
    configPath: null,
    log,
    offloads,
    socketDir: socketDir(),
    metrics,
    version: VERSION,
    threads,
    logLevel: logLevelFromEnv(),
    // wg-quick sets the MTU from the routes (8920 on jumbo frames) once the daemon runs.
    largestMtu: MAX_MTU,
  });
  // As wireguard-go: an existing persistent TUN of that name is attached to (nothing is configured on it here).
  (daemon.device.tun as KernelTun).existing = "attach";
  const signals = handleSignals(daemon, log);
  try {
    await daemon.start();
  } catch (err) {
    signals.release();
    daemon.close();
    reportFailure(`wontun: ${(err as Error).message}`);
    throw err;
  }
  log.info(`${daemon.interfaceName}: running; configure it with wg (control socket ${daemon.socketPath})`);
  reportReady();
  daemon.settleAfterStartup();
  signals.running();
  try {
    await daemon.run();
  } finally {
    signals.release();
    daemon.close();
  }
  log.info(`${daemon.interfaceName}: stopped`);
  return 0;
}
