// `wontun up CONFIG`: bring the tunnel up in the foreground until SIGINT/SIGTERM.
import { defineCommand } from "citty";
import { loadConfig, interfaceNameFromPath } from "../../config/load.ts";
import { validateInterfaceName } from "../../sys/tun.ts";
import { createLogger, isLogLevel, LOG_LEVELS, type Logger, type LogLevel } from "../../log.ts";
import { Device } from "../../device/device.ts";
import { kernelIo } from "../../device/kernel-io.ts";
import { addConfigPeers } from "../../device/config-peers.ts";
import { HostSetup } from "../../host/setup.ts";
import { notifyReady, notifyReloading, notifyStopping } from "../../host/notify.ts";
import { ALL_OFFLOADS, OFFLOAD_NAMES, parseOffloads, type Offloads } from "../../device/offloads.ts";
import { WontunProtocol } from "../../protocol/wontun/protocol.ts";
import { WireGuardProtocol } from "../../protocol/wireguard/protocol.ts";
import type { TunnelProtocol } from "../../protocol/tunnel.ts";
import { forcedAeadBackend, selectAeadBackend } from "../../crypto/aead.ts";
import { BySizeBackend } from "../../crypto/aead-by-size.ts";
import { encodeKey } from "../../crypto/keys.ts";
import { peerLabel, type Config } from "../../config/model.ts";
import { parseCommandLine, parseIntegerOption } from "../args.ts";
import { UsageError } from "../errors.ts";
import { VERSION } from "../version.ts";

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
} as const;

export function parseLogLevel(value: unknown): LogLevel {
  const text = String(value);
  if (!isLogLevel(text)) throw new UsageError(`--log-level must be one of ${LOG_LEVELS.join(", ")}, got "${text}"`);
  return text;
}

/** The config's i-th peer is peer i + 1 (in the protocol and the device). */
const configPeerId = (i: number) => i + 1;

/** The protocol a config asks for: WireGuard when it has keys, else the plaintext wontun one. */
function createProtocol(config: Config, log: Logger): TunnelProtocol {
  const labels = config.peers.map(peerLabel);
  if (config.mode === "wireguard") {
    const aead = selectAeadBackend();
    const wg = new WireGuardProtocol({
      privateKey: config.interface.privateKey!,
      peers: config.peers.map((p, i) => ({
        id: configPeerId(i),
        publicKey: p.publicKey!,
        presharedKey: p.presharedKey,
        persistentKeepaliveSeconds: p.persistentKeepalive,
      })),
      aead,
      mtu: config.interface.mtu,
    });
    wg.onEvent = (peer, message) => log.debug(`peer ${labels[peer - 1]}: ${message}`);
    let via: string = aead.name;
    if (aead instanceof BySizeBackend) {
      via = "libsodium, and libcrypto from the first long packet on";
      aead.onLongUnavailable = (why) => log.warn(`libcrypto unavailable (${why}); long packets stay on libsodium`);
    }
    log.info(`WireGuard mode, public key ${encodeKey(wg.publicKey)}; ChaCha20-Poly1305 via ${via}`);
    return wg;
  }
  log.warn("wontun protocol: traffic is NOT encrypted or authenticated; use it only on networks you trust");
  const wontun = new WontunProtocol(
    config.interface.name,
    config.peers.map((p, i) => ({ id: configPeerId(i), name: p.name, persistentKeepaliveSeconds: p.persistentKeepalive })),
  );
  wontun.onTransition = (peer, from, to) => log.debug(`peer ${labels[peer - 1]}: ${from} -> ${to}`);
  return wontun;
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

export const upCommand = defineCommand({
  meta: { name: "up", description: "Bring a tunnel up and run it in the foreground (Ctrl-C to stop)" },
  args: upArgs,
  async run({ rawArgs }) {
    const args = parseCommandLine("up", rawArgs, upArgs);
    const level = parseLogLevel(args["log-level"]);
    const offloads = chooseOffloads(args.offload);
    const aead = forcedAeadBackend();
    if (aead !== null && typeof aead === "object") throw new UsageError(aead.error);
    const interfaceName = args.interface ?? interfaceNameFromPath(args.config);
    const badName = validateInterfaceName(interfaceName);
    if (badName) throw new UsageError(args.interface ? badName : `${badName}; pass --interface NAME`);
    const config = loadConfig(args.config, { wireguard: true });
    if (args.fwmark !== undefined) config.interface.fwmark = parseIntegerOption("fwmark", args.fwmark, 0, 0xffffffff, { off: true });

    const log = createLogger(level);
    log.info(`wontun ${VERSION} starting ${interfaceName} from ${args.config}`);
    for (const warning of config.warnings) log.warn(warning);
    // Before the device: a full tunnel's fwmark must be on its sockets from the start; PreUp runs.
    const host = await HostSetup.prepare({ config, interfaceName, configPath: args.config, log });
    const protocol = createProtocol(config, log);
    const io = kernelIo({ interfaceName, offloads, mtu: config.interface.mtu, protocolHeadroom: protocol.headroom, log });
    io.bind.setMark(config.interface.fwmark);
    const device = new Device({ tun: io.tun, bind: io.bind, protocol, log, listenPort: config.interface.listenPort });
    // systemd's readiness protocol; a NOTIFY_SOCKET that cannot be reached is only worth a warning.
    const tellSystemd = (send: () => boolean) => {
      try { send(); } catch (e) { log.warn(`systemd notification failed: ${(e as Error).message}`); }
    };

    let signals = 0;
    const onSignal = (signal: string) => {
      signals++;
      if (signals > 1) {
        log.warn(`${signal} again: exiting now`);
        process.exit(1);
      }
      log.info(`${signal}: shutting down`);
      tellSystemd(notifyStopping);
      device.stop();
    };
    process.on("SIGINT", () => onSignal("SIGINT"));
    process.on("SIGTERM", () => onSignal("SIGTERM"));
    // systemd's ExecReload sends SIGHUP; until reload exists it must not end the process.
    process.on("SIGHUP", () => {
      tellSystemd(notifyReloading);
      log.warn("SIGHUP: reloading the config is not implemented yet; nothing changed");
      tellSystemd(() => notifyReady());
    });
    try {
      device.start();
      log.info(`interface ${device.tun.name} open; offloads ${io.offloads}`);
      await addConfigPeers(device, config, config.peers.map((_, i) => configPeerId(i)), log);
      await host.apply(device.tun!.name);
      log.info(`interface ${device.tun!.name} up: ${host.describe()}`);
      log.info(`${config.peers.length} peer(s) configured; running`);
      tellSystemd(() => notifyReady(`${device.tun!.name} up`));
      await device.run();
    } finally {
      for (const id of device.peerIds()) {
        const { rxBytes, txBytes } = device.peerTransfer(id);
        log.debug(`peer ${device.peerName(id)}: rx ${rxBytes} B tx ${txBytes} B`);
      }
      await host.teardown(() => device.close());
    }
    log.info("stopped; interface removed");
  },
});
