// `wontun down IFACE|CONFIG`: asks the daemon serving IFACE to stop (SIGTERM, as systemd would)
// and waits until it has removed its control socket, i.e. finished its shutdown.
import { defineCommand } from "citty";
import { existsSync } from "node:fs";
import { parseCommandLine } from "../args.ts";
import { writeOut } from "../output.ts";
import { controlSocketOf, daemonPid, interfaceArgument } from "../running-tunnel.ts";

export const downArgs = {
  tunnel: { type: "positional", description: "Interface name, or the config file it was started from", required: true },
} as const;

const WAIT_MS = 10_000;

export const downCommand = defineCommand({
  meta: { name: "down", description: "Stop a running tunnel: its interface and control socket go" },
  args: downArgs,
  async run({ rawArgs }) {
    const args = parseCommandLine("down", rawArgs, downArgs);
    const iface = interfaceArgument(args.tunnel);
    const pid = daemonPid(iface);
    process.kill(pid, "SIGTERM");
    const path = controlSocketOf(iface);
    const deadline = Date.now() + WAIT_MS;
    while (existsSync(path)) {
      if (Date.now() >= deadline) throw new Error(`${iface}: wontun (pid ${pid}) was asked to stop but still runs after ${WAIT_MS / 1000} s`);
      await Bun.sleep(50);
    }
    writeOut(`${iface}: stopped\n`);
  },
});
